"""``SqlTx``: the part of the ``Tx`` both SQL stores do the same way.

Searches and whole-store views send the same statements on both stores (up to the search
dialect, sql/search.py) and decode the same rows (rows.py); only how a statement runs
differs, so a store's Tx provides that:

* ``_rows(query, params)``: the rows of a statement, in this transaction;
* ``_sized(query, params, kind, max_size)``: the records of a search under a size budget
  (``engine.pages``), reading no more rows from the database than it keeps;
* ``_write(query, params)``: run a statement that answers no rows (sql/queues.py);
* ``dialect``: how its searches are written.

Everything else (the hot path, its caches, locking) is each store's own (sqlite/tx.py,
postgres/tx.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import ORIGIN
from sustain.store.sql import statements as sql
from sustain.store.sql.queues import SqlQueues
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import task as _task
from sustain.store.sql.search import PROMISES, SCHEDULES, Dialect, Kind, search_params, search_sql
from sustain.store.tx import Callback, Execute, Listener, Page, TaskRow

T = TypeVar("T")
Row = tuple[Any, ...]
Params = tuple[Any, ...] | Mapping[str, Any]


class SqlTx(SqlQueues):
    """Searches and whole-store views over ``_rows`` and ``_sized`` (module docstring)."""

    __slots__ = ()
    dialect: ClassVar[Dialect]

    def _rows(self, query: str, params: Params = ()) -> Iterable[Row]:
        raise NotImplementedError

    def _sized(self, query: str, params: dict[str, Any], kind: Kind[T], max_size: int) -> list[T]:
        raise NotImplementedError

    def _write(self, query: str, params: Params) -> None:
        raise NotImplementedError

    # -- searches -------------------------------------------------------------------------
    def search_promises(
        self, state: PromiseState | None, tags: Mapping[str, str], page: Page
    ) -> list[Promise]:
        params = search_params(self.dialect, tags, page)
        params["origin"] = tags.get(ORIGIN)
        params["state"] = state
        return self._search(PROMISES, tags, page, params, state=state is not None)

    def search_schedules(self, tags: Mapping[str, str], page: Page) -> list[Schedule]:
        params = search_params(self.dialect, tags, page)
        return self._search(SCHEDULES, tags, page, params, state=False)

    def _search(
        self, kind: Kind[T], tags: Mapping[str, str], page: Page, params: dict[str, Any], *,
        state: bool,
    ) -> list[T]:  # fmt: skip
        """``kind``'s rows of one shape of search (sql/search.py), bounded or not."""
        query = search_sql(
            self.dialect,
            kind,
            state=state,
            tags=bool(tags),
            cursor=page.cursor is not None,
            origin=kind is PROMISES and ORIGIN in tags,
        )
        if page.max_size is None:
            return [kind.make(r) for r in self._rows(query, params)]
        return self._sized(query, params, kind, page.max_size)

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
