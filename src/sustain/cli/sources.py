"""Where ``export`` and ``check`` read executions from: a server URL or a SQLite file.

Both answer ``request(kind, data, ok)`` like ``Session`` does (the answer's data, or
``ErrorAnswer``), so the code that pages through an execution (``tree.execution``) does
not care which.  A file is read in this process through the engine itself, the very
operation a server would run (``promise.get``, ``promise.search``), with no server, loop
or worker started: nothing is delivered and no timer fires.  The file's lock is taken like
a server takes it, so a file open in a running server is refused with one line (ask that
server by its URL instead).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from sustain.cli.errors import CliError, ErrorAnswer
from sustain.cli.session import MAX_PAGES, Session
from sustain.engine import Engine, EngineConfig
from sustain.runtime.clock import Clock
from sustain.store.errors import StoreError
from sustain.store.sqlite import SqliteStore


class Requester(Protocol):
    def request(self, kind: str, data: dict[str, Any], ok: Collection[int] = (200,)) -> Any:
        """The answer's data for an ``ok`` status; ``ErrorAnswer`` otherwise."""


class StoreFile:
    """A SQLite store file answering protocol reads in this process."""

    def __init__(self, path: str) -> None:
        if not Path(path).is_file():  # opening would create an empty database
            raise CliError(f"no such database file: {path}")
        try:
            self._store = SqliteStore(path)
        except StoreError as exc:
            raise CliError(str(exc)) from None
        self._engine = Engine(EngineConfig())
        self._clock = Clock()

    def request(self, kind: str, data: dict[str, Any], ok: Collection[int] = (200,)) -> Any:
        engine, now = self._engine, self._clock.now()
        outcome = self._store.run(lambda tx: engine.apply(tx, kind, data, now, "cli"))
        answer = msgspec.to_builtins(outcome.data)
        if outcome.status not in ok:
            raise ErrorAnswer(outcome.status, f"{answer}: {data.get('id', '')}".rstrip(": "))
        return answer

    def close(self) -> None:
        self._store.close()


def is_url(against: str) -> bool:
    return "://" in against


def open_source(session: Session, against: str) -> Session | StoreFile:
    """The server at the URL ``against`` (with ``session``'s token), or the SQLite file
    ``against``; the caller closes it."""
    if is_url(against):
        return Session(against, session.token, session.as_json)
    return StoreFile(against)


def search(source: Requester, kind: str, data: dict[str, Any], key: str) -> Iterator[Any]:
    """Every item of a search (``key``: ``promises``...), page after page, lazily: a caller
    that has enough stops asking.  A server that hands back its cursor again ends it."""
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = source.request(kind, {**data, "cursor": cursor} if cursor else data)
        items = page.get(key) if isinstance(page, dict) else None
        yield from items or []
        next_cursor = page.get("cursor") if isinstance(page, dict) else None
        if not isinstance(next_cursor, str) or next_cursor == cursor:
            return
        cursor = next_cursor
