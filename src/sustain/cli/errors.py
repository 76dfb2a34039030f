"""The CLI's errors and exit codes.

Every mistake a user can make (a bad duration or JSON value, an unreachable server, an error
answer) is a ``CliError``: click catches it, ``show`` prints one line ``Error: <message>`` on
stderr and the process exits with the class's code — never a traceback.

Exit codes
----------
* 0 — success (including 300 from ``task.suspend``: the worker continues, the preload is shown)
* 1 — the server answered an error status, or an option value is invalid
* 2 — usage error (unknown option, missing argument; reported by click itself)
* 3 — the server could not be reached
"""

from __future__ import annotations

from typing import IO, Any

import click

from sustain.cli import output

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3


class CliError(click.ClickException):
    """A user mistake or an error answer: one line on stderr, exit code 1."""

    exit_code = EXIT_ERROR

    def show(self, file: IO[Any] | None = None) -> None:
        output.error(self.format_message())


class ErrorAnswer(CliError):
    """The server answered an error status; the message is its ``data``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ServerUnreachable(CliError):
    """No answer from the server (connection refused, DNS failure, timeout)."""

    exit_code = EXIT_UNREACHABLE
