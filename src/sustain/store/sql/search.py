"""The search statements of both SQL stores: one builder, each store's dialect.

A search (``search_promises``, ``search_schedules``) is one statement per *shape*: which of
origin, state, cursor and tags it filters on.  An ``x IS NULL OR ...`` predicate would serve
every shape with one statement but stop the index seek past the cursor, so each shape gets
its own text, built once and cached.  What differs between the stores is the ``Dialect``:
how a named parameter is written, and how "every pair of the filter is in the row's tags" is
asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from sustain.protocol.limits import promise_size, schedule_size
from sustain.protocol.records import Promise, Schedule
from sustain.store.sql import rows
from sustain.store.sql.statements import P_COLS, S_COLS
from sustain.store.tx import Page

T = TypeVar("T")


@dataclass(frozen=True)
class Kind(Generic[T]):
    """What is searched: its table and columns, and how a row becomes a record of a size."""

    table: str
    cols: str
    tags_col: str
    make: Callable[[Any], T]
    size: Callable[[T], int]


PROMISES: Kind[Promise] = Kind("promises", P_COLS, "tags", rows.promise, promise_size)
SCHEDULES: Kind[Schedule] = Kind("schedules", S_COLS, "promise_tags", rows.schedule, schedule_size)


@dataclass(frozen=True)
class Dialect:
    """What a store's driver and database make of a search."""

    param: str
    """A named parameter, ``{}`` standing for its name: ``:{}`` (sqlite3), ``%({})s``
    (psycopg)."""
    tags_match: str
    """The predicate "filter ⊆ tags" on the column ``{col}``, reading the parameters
    ``tags`` (the filter as JSON text) and, with ``count_tags``, ``ntags``."""
    tags_json: Callable[[Mapping[str, str]], str | None]
    """The filter as the ``tags`` parameter (a store may refuse what its column cannot
    hold)."""
    count_tags: bool = False
    """``tags_match`` compares a count with the filter's size (``ntags``)."""


@lru_cache(maxsize=64)
def search_sql(
    dialect: Dialect,
    kind: Kind[Any],
    *,
    state: bool,
    tags: bool,
    cursor: bool,
    origin: bool = False,
) -> str:
    """The statement of one shape of search (module docstring)."""
    p = dialect.param.format
    where = []
    if origin:
        # Redundant with the tag match, but walks promises_origin (one tree's promises)
        # instead of every promise.
        where.append(f"origin = {p('origin')}")
    if state:
        where.append(f"state = {p('state')}")
    if cursor:
        where.append(f"id > {p('cursor')}")
    if tags:
        where.append(dialect.tags_match.format(col=kind.tags_col))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {kind.cols} FROM {kind.table}{clause} ORDER BY id LIMIT {p('limit')}"


def search_params(dialect: Dialect, tags: Mapping[str, str], page: Page) -> dict[str, Any]:
    """The parameters every shape of ``search_sql`` may read (a promise search adds
    ``origin`` and ``state``)."""
    params: dict[str, Any] = {
        "cursor": page.cursor,
        "tags": dialect.tags_json(tags),
        "limit": page.limit,
    }
    if dialect.count_tags:
        params["ntags"] = len(tags)
    return params
