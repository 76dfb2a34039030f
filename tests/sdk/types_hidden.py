"""An exception class only the worker of ``types_app`` imports (inside ``hidden``): the test
process never does, so it cannot rebuild the class and gets an ``ApplicationError``."""

from __future__ import annotations


class Hidden(Exception):
    def __init__(self, message: str, level: int) -> None:
        self.level = level
        super().__init__(message)
