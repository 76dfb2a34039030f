"""``SqlTx``: the part of the ``Tx`` both SQL stores do the same way.

Searches and whole-store views send the same statements on both stores (up to the search
dialect, sql/search.py) and decode the same rows (rows.py); only how a statement runs
differs, so a store's Tx provides that:

* ``_rows(sql, params)``: the rows of a statement, in this transaction;
* ``_sized(sql, params, make, max_size, size)``: the records of a search under a size
  budget (``engine.pages``), reading no more rows from the database than it keeps;
* ``dialect``: how its searches are written.

Everything else (the hot path, its caches, locking) is each store's own (sqlite/tx.py,
postgres/tx.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from sustain.protocol.limits import promise_size, schedule_size
from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import ORIGIN
from sustain.store.sql import statements as sql
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import schedule as _schedule
from sustain.store.sql.rows import task as _task
from sustain.store.sql.search import Dialect, search_params, search_sql
from sustain.store.tx import Callback, Execute, Listener, TaskRow

T = TypeVar("T")
Row = tuple[Any, ...]
Params = tuple[Any, ...] | Mapping[str, Any]


class SqlTx:
    """Searches and whole-store views over ``_rows`` and ``_sized`` (module docstring)."""

    __slots__ = ()
    dialect: ClassVar[Dialect]

    def _rows(self, statement: str, params: Params = ()) -> Iterable[Row]:
        raise NotImplementedError

    def _sized(
        self,
        statement: str,
        params: dict[str, Any],
        make: Callable[[Any], T],
        max_size: int,
        size: Callable[[T], int],
    ) -> list[T]:
        raise NotImplementedError

    # -- searches -------------------------------------------------------------------------
    def search_promises(
        self,
        state: PromiseState | None,
        tags: Mapping[str, str],
        limit: int,
        cursor: str | None,
        max_size: int | None = None,
    ) -> list[Promise]:
        statement = search_sql(
            self.dialect,
            "promises",
            sql.P_COLS,
            "tags",
            state=state is not None,
            tags=bool(tags),
            cursor=cursor is not None,
            origin=ORIGIN in tags,
        )
        params = search_params(self.dialect, tags, limit, cursor)
        params["origin"] = tags.get(ORIGIN)
        params["state"] = state
        if max_size is None:
            return [_promise(r) for r in self._rows(statement, params)]
        return self._sized(statement, params, _promise, max_size, promise_size)

    def search_schedules(
        self,
        tags: Mapping[str, str],
        limit: int,
        cursor: str | None,
        max_size: int | None = None,
    ) -> list[Schedule]:
        statement = search_sql(
            self.dialect,
            "schedules",
            sql.S_COLS,
            "promise_tags",
            state=False,
            tags=bool(tags),
            cursor=cursor is not None,
        )
        params = search_params(self.dialect, tags, limit, cursor)
        if max_size is None:
            return [_schedule(r) for r in self._rows(statement, params)]
        return self._sized(statement, params, _schedule, max_size, schedule_size)

    # -- whole-store views ----------------------------------------------------------------
    def all_promises(self) -> list[Promise]:
        return [_promise(r) for r in self._rows(sql.P_ALL)]

    def all_tasks(self) -> list[TaskRow]:
        return [_task(r) for r in self._rows(sql.T_ALL)]

    def all_callbacks(self) -> list[Callback]:
        return [Callback(a, w, bool(r)) for a, w, r in self._rows(sql.C_ALL)]

    def all_listeners(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._rows(sql.L_ALL)]

    def all_executes(self) -> list[Execute]:
        return [Execute(t, v, a) for t, v, a in self._rows(sql.X_ALL)]

    def all_unblocks(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._rows(sql.U_ALL)]

    def next_deadline(self) -> int | None:
        row = next(iter(self._rows(sql.NEXT_DEADLINE)), None)
        if row is None:
            return None
        return min((int(at) for at in row if at is not None), default=None)

    def has_outbox(self) -> bool:
        row = next(iter(self._rows(sql.HAS_OUTBOX)), None)
        return bool(row is not None and row[0])
