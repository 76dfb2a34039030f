"""The ``sustain`` command line: the server commands and a thin client of the protocol."""
