"""Errors raised by the stores themselves (not by the protocol).

::

    StoreError(SustainError)    a store could not do what was asked
    ├── StoreLockedError        another process holds the database file (its lock file)
    ├── StoreClosedError        an operation was submitted after ``close()``
    ├── CommitError             the COMMIT of a group-committed batch failed: no operation in
    │                           the batch was acknowledged, none of its writes is durable
    └── SchemaVersionError      the database was migrated by a newer Sustain than this one

An exception raised by an operation itself is not wrapped: it reaches the caller as raised,
after that operation's writes were rolled back.
"""

from __future__ import annotations

import sqlite3

from sustain.errors import SustainError


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


class CommitError(StoreError):
    """The batch's COMMIT failed; nothing in it was acknowledged."""

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"commit failed on {path!r}: {cause}")
        self.path = path


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
UNAVAILABLE: tuple[type[Exception], ...] = (StoreClosedError, CommitError, sqlite3.OperationalError)
