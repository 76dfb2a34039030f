"""Errors raised by the stores themselves (not by the protocol).

::

    StoreError(SustainError)      a store could not do what was asked
    ├── StoreLockedError          another process holds the database file (its lock file)
    ├── StoreClosedError          an operation was submitted after ``close()``
    ├── StoreOpenError            the store cannot open: a bad file or URL, an unreachable
    │   │                         database, a failed migration
    │   └── PostgresConnectError  ... on PostgreSQL
    ├── StoreStatementError       a statement of an operation failed in the database, not
    │                             because of the operation (SQLite: a full disk, an I/O error,
    │                             a lock wait that timed out): its writes were rolled back
    ├── CommitError               the COMMIT of a group-committed batch failed: no operation in
    │   │                         the batch was acknowledged, none of its writes is durable
    │   ├── StoreRaceError        PostgreSQL: the operation kept losing races (deadlocks,
    │   │                         concurrent creates); nothing committed
    │   └── StoreUnavailableError PostgreSQL: unreachable, or the connection broke: the outcome
    │                             is unknown
    └── SchemaVersionError        the database was migrated by a newer Sustain than this one

An exception raised by an operation itself is not wrapped: it reaches the caller as raised,
after that operation's writes were rolled back.  The database drivers' own exceptions
(``sqlite3``, ``psycopg``) stay inside the store: what a caller may act on is one of these.
"""

from __future__ import annotations

from sustain.errors import SustainError


def first_line(exc: BaseException | str) -> str:
    """The first line of an error's text (a driver's message may run to several)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class StoreError(SustainError):
    """The store could not complete the request."""


class StoreLockedError(StoreError):
    """The database is already open in another process."""

    def __init__(self, path: str) -> None:
        super().__init__(
            f"database {path!r} is already open in another process "
            f"(lock file {path + '.lock'!r} is held)"
        )
        self.path = path


class StoreClosedError(StoreError):
    """The store is closed."""

    def __init__(self, path: str) -> None:
        super().__init__(f"store {path!r} is closed")
        self.path = path


class StoreOpenError(StoreError):
    """The store cannot open."""

    def __init__(self, path: str, cause: BaseException | str) -> None:
        # The driver's text alone, as it was shown before the store wrapped it.
        super().__init__(cause if isinstance(cause, str) else str(cause))
        self.path = path


class PostgresConnectError(StoreOpenError):
    """The store cannot open: a bad URL, an unreachable database, a failed migration."""

    def __init__(self, where: str, cause: BaseException | str) -> None:
        text = cause if isinstance(cause, str) else first_line(cause)
        StoreError.__init__(self, f"cannot open PostgreSQL at {where}: {text}")
        self.path = where


class StoreStatementError(StoreError):
    """A statement failed in the database, not because of the operation; nothing of the
    operation was written."""

    def __init__(self, path: str, cause: BaseException) -> None:
        # The driver's text alone: what a 503's log line showed before the store wrapped it.
        super().__init__(str(cause))
        self.path = path


class CommitError(StoreError):
    """The batch's COMMIT failed; nothing in it was acknowledged."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"commit failed on {path!r}: {cause}")
        self.path = path


class StoreRaceError(CommitError):
    """An operation kept losing races (deadlocks, concurrent creates); nothing committed."""

    def __init__(self, where: str, attempts: int, cause: BaseException) -> None:
        StoreError.__init__(
            self, f"transaction on {where} lost {attempts} races in a row: {first_line(cause)}"
        )
        self.path = where


class StoreUnavailableError(CommitError):
    """The database could not be reached, or the connection broke: the outcome is unknown."""

    def __init__(self, where: str, cause: BaseException) -> None:
        StoreError.__init__(self, f"PostgreSQL at {where} is unavailable: {first_line(cause)}")
        self.path = where


class SchemaVersionError(StoreError):
    """The database schema is newer than this version of Sustain understands."""

    def __init__(self, path: str, versions: list[int]) -> None:
        super().__init__(
            f"database {path!r} has schema migrations {versions} unknown to this Sustain; "
            "upgrade Sustain to open it"
        )
        self.path = path
        self.versions = versions


# What a store raises when it cannot write now but may later (a closing store, a failed
# commit, a lost PostgreSQL connection, a full disk under SQLite): a request answers 503, a
# background loop logs one line and tries again; neither is a bug worth a traceback.
UNAVAILABLE: tuple[type[Exception], ...] = (StoreClosedError, CommitError, StoreStatementError)
