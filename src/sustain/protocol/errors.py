"""Protocol errors: a status and the catalogue's message (PROTOCOL.md §11)."""

from __future__ import annotations


class ProtocolError(Exception):
    """A request the protocol answers with an error status and a message string."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
