"""``SqliteTx``: the row-level ``Tx`` of sustain.store.tx as SQL on one connection.

Each method is one or two statements, the constants of statements.py (sqlite3's statement
cache reuses their prepared form); searches and whole-store views are ``SqlTx``'s
(sql/tx.py), shared with PostgreSQL.  JSON columns (tags, headers) are text written and read by
msgspec; SQLite itself only looks into ``tags`` for tag search.  The reserved tags that
indexes need (target, branch, origin) are copied into their own columns on insert.
Absent and empty are distinct: ``headers`` NULL vs ``'{}'``, ``data`` NULL vs ``''``.

The writer thread owns the connection and the transaction; a ``SqliteTx`` never begins,
commits or rolls back.

Row cache: the promise and task rows this ``SqliteTx`` last read or wrote are kept, as the
tuples SQLite returns, across operations and batches.  An operation reads the same rows
again and again (try_timeout, then the op, then the settle chain), and a workflow's next
operation reads its root promise and task once more; each read saved is a statement.  This
is sound because the writer thread is the only writer of the file (the store holds its
``flock``) and every write of those tables goes through here, which keeps the cached rows
equal to the database's, uncommitted writes included.  Whenever the writer undoes anything
(a rollback to a savepoint, a rolled back or failed transaction) it calls ``forget``: the
cache may then hold rows the database no longer has.  Tuples, not records: the records
handed out are the caller's to keep, so each read decodes a fresh one.

Row counts: for the same reasons the number of callbacks and of listeners is kept once
known.  Every settlement asks for the callbacks and listeners of the promise, and
fulfilling a task deletes its callbacks: with an empty table (no workflow awaiting anything
remotely, the common case for steps) those statements are skipped.  ``forget`` makes the
counts unknown again; the next look-up counts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sustain.protocol.records import Promise, Schedule
from sustain.store.sql import rows
from sustain.store.sql import statements as sql
from sustain.store.sql.rows import encode as _encode
from sustain.store.sql.rows import json_text as _json
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import schedule as _schedule
from sustain.store.sql.rows import task as _task
from sustain.store.sql.search import Kind
from sustain.store.sql.tx import Params, Row, SqlTx
from sustain.store.sqlite import statements as q
from sustain.store.tx import Callback, Execute, TaskRow

# Rows cached per table before the cache starts over; rows whose data is larger than
# _CACHE_DATA characters are not cached (the page cache has them; this one is for the small
# rows of the hot path, and must not pin megabytes of payloads).
_CACHE_ROWS = 8192
_CACHE_DATA = 4096
_MISS: Any = object()
T = TypeVar("T")


def _keep(cache: dict[str, Any], id: str, row: Any) -> None:
    """Remember ``row`` under ``id``; a full cache starts over (no per-read bookkeeping, as
    an LRU would need, on the writer's hot path)."""
    if len(cache) >= _CACHE_ROWS:
        cache.clear()
    cache[id] = row


def _small(param_data: str | None, value_data: str | None) -> bool:
    return (param_data is None or len(param_data) <= _CACHE_DATA) and (
        value_data is None or len(value_data) <= _CACHE_DATA
    )


class SqliteTx(SqlTx):
    """The ``Tx`` of one open transaction on ``conn`` (owned by the writer thread)."""

    dialect = q.SEARCH

    __slots__ = (
        "_callbacks",
        "_conn",
        "_cur",
        "_listeners",
        "_no_awaits",
        "_on",
        "_promise_rows",
        "_task_rows",
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        # One cursor for every statement: ``Connection.execute`` would allocate a cursor
        # (and register a weak reference to it) per statement, ~6 per operation.  Sharing
        # it is safe because every method consumes its results before returning.
        self._conn = conn
        self._cur = conn.cursor()
        # id -> row as q.P_GET / q.T_GET would answer it (None: no such row); module docstring.
        self._promise_rows: dict[str, Row | None] = {}
        self._task_rows: dict[str, Row | None] = {}
        # Rows in callbacks / listeners; None: unknown (module docstring).
        self._callbacks: int | None = None
        self._listeners: int | None = None
        # Left by due_promises' prefetch for the timeout pass: the answer of callbacks_on
        # per due promise (taken by the first call), and the due promises known to await
        # nothing.  Each write of callbacks drops what it makes stale.
        self._on: dict[str, list[Callback]] = {}
        self._no_awaits: set[str] = set()

    def forget(self) -> None:
        """Drop the row cache and counts: the writer undid writes they may include."""
        self._promise_rows.clear()
        self._task_rows.clear()
        self._callbacks = None
        self._listeners = None
        self._on.clear()
        self._no_awaits.clear()

    def _no_callbacks(self) -> bool:
        n = self._callbacks
        if n is None:
            n = self._callbacks = int(self._cur.execute(q.C_COUNT).fetchone()[0])
        return n == 0

    def _callbacks_deleted(self, n: int) -> None:
        if n:
            # Rows of any awaited promise may be gone.
            self._on.clear()
            if self._callbacks is not None:
                self._callbacks -= n

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        cache = self._promise_rows
        row = cache.get(id, _MISS)
        if row is _MISS:
            row = self._cur.execute(q.P_GET, (id,)).fetchone()
            if row is None or _small(row[3], row[5]):
                _keep(cache, id, row)
        return None if row is None else _promise(row)

    def insert_promise(self, promise: Promise) -> None:
        params = rows.promise_params(promise)
        self._cur.execute(q.P_INSERT, params)
        cache = self._promise_rows
        if _small(params[3], params[5]):
            _keep(cache, promise.id, params[:10])
        else:
            cache.pop(promise.id, None)

    def update_promise(self, promise: Promise) -> None:
        """Write ``state``, ``value`` and ``settledAt``: the fields that change (tx.py); the
        rest of a promise is fixed at insert."""
        v = promise.value
        headers = _json(v.headers)
        self._cur.execute(
            q.P_UPDATE, (promise.state, headers, v.data, promise.settledAt, promise.id)
        )
        cache = self._promise_rows
        old = cache.pop(promise.id, None)
        if old is not None and _small(old[3], v.data):
            pid, _, ph, pd, _, _, tags, timeout_at, created_at, _ = old
            cache[pid] = (
                pid, promise.state, ph, pd, headers, v.data, tags, timeout_at, created_at,
                promise.settledAt,
            )  # fmt: skip

    def branch_promises(self, branch: str) -> list[Promise]:
        return [_promise(r) for r in self._cur.execute(q.P_BRANCH, (branch,))]

    def due_promises(self, time: int) -> list[Promise]:
        due = self._cur.execute(q.P_DUE, (time,)).fetchall()
        if due:
            self._prefetch([r[0] for r in due])
        return [_promise(r) for r in due]

    def _prefetch(self, ids: list[str]) -> None:
        """Cache what the timeout pass reads next (settlement.py's chain) in at most five
        statements instead of up to five per due promise: each due promise's task, whether
        it awaits anything (the fulfilled task's callbacks are deleted), the callbacks on it,
        and the promise and task of each of its not-ready awaiters.  The task rows and the
        awaiters are skipped when every due task is cached already (promises that timed out
        soon after they were written): then so are most of the awaiters."""
        cur = self._cur
        keys = _encode(ids).decode()
        tasks = self._task_rows
        missing = [id for id in ids if id not in tasks]
        if missing:
            if len(tasks) + len(missing) > _CACHE_ROWS:
                tasks.clear()
            for id in missing:
                tasks[id] = None  # the rows found replace these
            for row in cur.execute(q.T_BY_IDS, (_encode(missing).decode(),)):
                tasks[row[0]] = row
        on = self._on
        no_awaits = self._no_awaits
        on.clear()
        no_awaits.clear()
        if self._no_callbacks():
            return
        for id in ids:
            on[id] = []
        for a, w, r in cur.execute(q.C_ON_MANY, (keys,)):
            on[a].append(Callback(a, w, bool(r)))
        no_awaits.update(ids)
        no_awaits.difference_update(w for (w,) in cur.execute(q.C_AWAITING, (keys,)))
        if not missing:
            return
        promises = self._promise_rows
        for row in cur.execute(q.P_AWAITERS, (keys,)):
            if _small(row[3], row[5]):
                _keep(promises, row[0], row)
        for row in cur.execute(q.T_AWAITERS, (keys,)):
            _keep(tasks, row[0], row)

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        cache = self._task_rows
        row = cache.get(id, _MISS)
        if row is _MISS:
            row = self._cur.execute(q.T_GET, (id,)).fetchone()
            _keep(cache, id, row)
        return None if row is None else _task(row)

    def put_task(self, task: TaskRow) -> None:
        params = rows.task_params(task)
        self._cur.execute(q.T_PUT, params)
        _keep(self._task_rows, task.id, params)

    def due_tasks(self, time: int) -> list[TaskRow]:
        return [_task(r) for r in self._cur.execute(q.T_DUE, (time,))]

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        self._on.pop(awaited, None)
        self._no_awaits.discard(awaiter)
        if self._cur.execute(q.C_ADD, (awaited, awaiter, ready)).rowcount:
            if self._callbacks is not None:
                self._callbacks += 1
        elif ready:
            self._cur.execute(q.C_RAISE, (awaited, awaiter))

    def callbacks_on(self, awaited: str) -> list[Callback]:
        prefetched = self._on.pop(awaited, None)
        if prefetched is not None:
            return prefetched
        if self._no_callbacks():
            return []
        return [Callback(a, w, bool(r)) for a, w, r in self._cur.execute(q.C_ON, (awaited,))]

    def mark_ready(self, awaited: str) -> None:
        self._on.pop(awaited, None)
        if not self._no_callbacks():
            self._cur.execute(q.C_MARK, (awaited,))

    def count_ready(self, awaiter: str) -> int:
        if self._no_callbacks():
            return 0
        return int(self._cur.execute(q.C_COUNT_READY, (awaiter,)).fetchone()[0])

    def delete_ready(self, awaiter: str) -> None:
        if not self._no_callbacks():
            self._callbacks_deleted(self._cur.execute(q.C_DELETE_READY, (awaiter,)).rowcount)

    def delete_callbacks_of(self, awaiter: str) -> None:
        if awaiter in self._no_awaits:
            return
        if not self._no_callbacks():
            self._callbacks_deleted(self._cur.execute(q.C_DELETE_OF, (awaiter,)).rowcount)

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        if not self._no_callbacks():
            self._callbacks_deleted(self._cur.execute(q.C_DELETE_ONE, (awaited, awaiter)).rowcount)

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        added = self._cur.execute(q.L_ADD, (promise_id, address)).rowcount
        if added and self._listeners is not None:
            self._listeners += 1

    def take_listeners(self, promise_id: str) -> list[str]:
        n = self._listeners
        if n is None:
            n = self._listeners = int(self._cur.execute(q.L_COUNT).fetchone()[0])
        if n == 0:
            return []
        taken = self._cur.execute(q.L_TAKE, (promise_id,)).fetchall()
        self._listeners = n - len(taken)
        # RETURNING gives no order guarantee: sort here.
        return sorted(a for (a,) in taken)

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        self._cur.execute(q.X_PUT, (task_id, version, address))

    def put_unblock(self, promise_id: str, address: str) -> None:
        self._cur.execute(q.U_PUT, (promise_id, address))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = sorted(
            (Execute(t, v, a) for t, v, a in self._cur.execute(q.X_CLAIM, (limit,)).fetchall()),
            key=lambda e: e.task_id,
        )
        pairs = sorted(self._cur.execute(q.U_CLAIM, (limit,)).fetchall())
        if not pairs:
            return executes, []
        ids = _encode(sorted({pid for pid, _ in pairs})).decode()
        promises = {p.id: p for p in map(_promise, self._cur.execute(q.P_BY_IDS, (ids,)))}
        # A pair whose promise is gone (not possible through the engine) is dropped, claimed.
        unblocks = [(promises[pid], addr) for pid, addr in pairs if pid in promises]
        return executes, unblocks

    # -- schedules ------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None:
        row = self._cur.execute(q.S_GET, (id,)).fetchone()
        return None if row is None else _schedule(row)

    def put_schedule(self, schedule: Schedule) -> None:
        self._cur.execute(q.S_PUT, rows.schedule_params(schedule))

    def delete_schedule(self, id: str) -> bool:
        return self._cur.execute(q.S_DELETE, (id,)).rowcount > 0

    # -- status records -------------------------------------------------------------------
    def get_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        return dict(self._cur.execute(q.ST_GET, (_encode(list(ids)).decode(),)).fetchall())

    def put_status(self, id: str, record: str) -> None:
        self._cur.execute(q.ST_PUT, (id, record))

    # -- the hooks of SqlTx (sql/tx.py) --------------------------------------------------
    def _rows(self, query: str, params: Params = ()) -> Iterable[Row]:
        return self._cur.execute(query, params)

    def _write(self, query: str, params: Params) -> None:
        self._cur.execute(query, params)

    def _sized(self, query: str, params: dict[str, Any], kind: Kind[T], max_size: int) -> list[T]:
        """The rows of a search, stepped one by one and left unread past the size budget.
        Its own cursor, closed here: the shared one must not keep a half-read statement."""
        cur = self._conn.cursor()
        try:
            found = map(kind.make, cur.execute(query, params))
            return rows.sized(found, int(params["limit"]), max_size, kind.size)
        finally:
            cur.close()

    def due_schedules(self, time: int) -> list[Schedule]:
        return [_schedule(r) for r in self._cur.execute(q.S_DUE, (time,))]

    # -- whole-store views (the rest: sql/tx.py) ------------------------------------------
    def reset(self) -> None:
        self.forget()
        for table in sql.TABLES:
            self._cur.execute(f"DELETE FROM {table}")  # fixed table names, never input
        self._callbacks = 0
        self._listeners = 0

    # -- store internals (not part of Tx) -------------------------------------------------
    def select_one(self) -> bool:
        return bool(self._cur.execute("SELECT 1").fetchone()[0] == 1)

    def probe_write(self) -> bool:
        """Rewrite one row with itself: a change the COMMIT must write to the WAL, which
        fails while the disk is full, and which changes nothing."""
        self._cur.execute(
            "UPDATE schema_migrations SET version = version"
            " WHERE version = (SELECT max(version) FROM schema_migrations)"
        )
        return True
