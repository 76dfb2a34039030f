"""An independent, deliberately simple reference model of the protocol (PROTOCOL.md)."""
