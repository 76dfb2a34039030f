"""``SqliteTx``: the row-level ``Tx`` of sustain.store.tx as SQL on one connection.

Each method is one or two statements, written as module constants so sqlite3's statement
cache reuses their prepared form.  JSON columns (tags, headers) are text written and read by
msgspec; SQLite itself only looks into ``tags`` for tag search.  The reserved tags that
indexes need (target, branch, origin) are copied into their own columns on insert.
Absent and empty are distinct: ``headers`` NULL vs ``'{}'``, ``data`` NULL vs ``''``.

The writer thread owns the connection and the transaction; a ``SqliteTx`` never begins,
commits or rolls back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from functools import lru_cache

from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import ORIGIN
from sustain.store import rows
from sustain.store.rows import encode as _encode
from sustain.store.rows import json_text as _json
from sustain.store.rows import promise as _promise
from sustain.store.rows import schedule as _schedule
from sustain.store.rows import task as _task
from sustain.store.tx import Callback, Execute, Listener, TaskRow

# -- promises ---------------------------------------------------------------------------------
_P_COLS = (
    "id, state, param_headers, param_data, value_headers, value_data, tags,"
    " timeout_at, created_at, settled_at"
)
_P_GET = f"SELECT {_P_COLS} FROM promises WHERE id = ?"
_P_INSERT = (
    f"INSERT INTO promises ({_P_COLS}, target, branch, origin)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Only the fields a settlement changes: leaving tags and timeout_at out of the SET spares
# SQLite the maintenance of the indexes on them.
_P_UPDATE = (
    "UPDATE promises SET state = ?, value_headers = ?, value_data = ?, settled_at = ? WHERE id = ?"
)
_P_BRANCH = f"SELECT {_P_COLS} FROM promises WHERE branch = ? ORDER BY id"
# INDEXED BY: without statistics the planner prefers walking the primary key for ORDER BY id,
# which reads every promise; the due set is small, sorting it is cheap.
_P_DUE = (
    f"SELECT {_P_COLS} FROM promises INDEXED BY promises_due"
    " WHERE state = 'pending' AND target IS NOT NULL AND timeout_at <= ? ORDER BY id"
)
_P_ALL = f"SELECT {_P_COLS} FROM promises ORDER BY id"
_P_BY_IDS = f"SELECT {_P_COLS} FROM promises WHERE id IN (SELECT value FROM json_each(?))"
# "filter ⊆ tags": the filter's pairs found in the row's tags, counted.  Keys are unique on
# both sides (JSON objects from dicts), so the count equals the filter's size exactly when
# every pair is present.
_TAGS_MATCH = (
    "(SELECT count(*) FROM json_each({col}) AS t JOIN json_each(:tags) AS f"
    " ON f.key = t.key AND f.value = t.value) = :ntags"
)

# -- tasks ------------------------------------------------------------------------------------
_T_COLS = "id, state, version, timeout_type, timeout_at, pid, ttl"
_T_GET = f"SELECT {_T_COLS} FROM tasks WHERE id = ?"
# Upserts rather than INSERT OR REPLACE: an update in place, where REPLACE deletes the row
# (and its index entries) and inserts it again.
_T_PUT = (
    f"INSERT INTO tasks ({_T_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " state = excluded.state, version = excluded.version, timeout_type = excluded.timeout_type,"
    " timeout_at = excluded.timeout_at, pid = excluded.pid, ttl = excluded.ttl"
)
_T_DUE = f"SELECT {_T_COLS} FROM tasks INDEXED BY tasks_due WHERE timeout_at <= ? ORDER BY id"
_T_ALL = f"SELECT {_T_COLS} FROM tasks ORDER BY id"

# -- callbacks --------------------------------------------------------------------------------
_C_ADD = (
    "INSERT INTO callbacks (awaited, awaiter, ready) VALUES (?, ?, ?)"
    " ON CONFLICT (awaited, awaiter) DO UPDATE SET ready = ready OR excluded.ready"
)
_C_ON = "SELECT awaited, awaiter, ready FROM callbacks WHERE awaited = ? ORDER BY awaiter"
_C_MARK = "UPDATE callbacks SET ready = 1 WHERE awaited = ? AND NOT ready"
_C_COUNT_READY = "SELECT count(*) FROM callbacks WHERE awaiter = ? AND ready"
_C_DELETE_READY = "DELETE FROM callbacks WHERE awaiter = ? AND ready"
_C_DELETE_OF = "DELETE FROM callbacks WHERE awaiter = ?"
_C_DELETE_ONE = "DELETE FROM callbacks WHERE awaited = ? AND awaiter = ?"
_C_ALL = "SELECT awaited, awaiter, ready FROM callbacks ORDER BY awaiter, awaited"

# -- listeners --------------------------------------------------------------------------------
_L_ADD = "INSERT OR IGNORE INTO listeners (promise_id, address) VALUES (?, ?)"
_L_TAKE = "DELETE FROM listeners WHERE promise_id = ? RETURNING address"
_L_ALL = "SELECT promise_id, address FROM listeners ORDER BY promise_id, address"

# -- outbox -----------------------------------------------------------------------------------
_X_PUT = (
    "INSERT INTO outgoing_execute (task_id, version, address) VALUES (?, ?, ?)"
    " ON CONFLICT (task_id) DO UPDATE SET version = excluded.version, address = excluded.address"
)
_X_CLAIM = (
    "DELETE FROM outgoing_execute WHERE task_id IN"
    " (SELECT task_id FROM outgoing_execute ORDER BY task_id LIMIT ?)"
    " RETURNING task_id, version, address"
)
_X_ALL = "SELECT task_id, version, address FROM outgoing_execute ORDER BY task_id"
_U_PUT = "INSERT OR IGNORE INTO outgoing_unblock (promise_id, address) VALUES (?, ?)"
_U_CLAIM = (
    "DELETE FROM outgoing_unblock WHERE (promise_id, address) IN"
    " (SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address LIMIT ?)"
    " RETURNING promise_id, address"
)
_U_ALL = "SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address"
_HAS_OUTBOX = (
    "SELECT EXISTS (SELECT 1 FROM outgoing_execute) OR EXISTS (SELECT 1 FROM outgoing_unblock)"
)

# -- schedules --------------------------------------------------------------------------------
_S_COLS = (
    "id, cron, promise_id, promise_timeout, promise_param_headers, promise_param_data,"
    " promise_tags, created_at, next_run_at, last_run_at"
)
_S_GET = f"SELECT {_S_COLS} FROM schedules WHERE id = ?"
_S_PUT = (
    f"INSERT INTO schedules ({_S_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, promise_id = excluded.promise_id,"
    " promise_timeout = excluded.promise_timeout,"
    " promise_param_headers = excluded.promise_param_headers,"
    " promise_param_data = excluded.promise_param_data, promise_tags = excluded.promise_tags,"
    " created_at = excluded.created_at, next_run_at = excluded.next_run_at,"
    " last_run_at = excluded.last_run_at"
)
_S_DELETE = "DELETE FROM schedules WHERE id = ?"
_S_DUE = (
    f"SELECT {_S_COLS} FROM schedules INDEXED BY schedules_due WHERE next_run_at <= ? ORDER BY id"
)
_S_ALL = f"SELECT {_S_COLS} FROM schedules ORDER BY id"

# -- whole store ------------------------------------------------------------------------------
_TABLES = (
    "promises",
    "tasks",
    "callbacks",
    "listeners",
    "outgoing_execute",
    "outgoing_unblock",
    "schedules",
)
# Each MIN walks its partial or plain index: three index seeks.
_NEXT_DEADLINE = (
    "SELECT"
    " (SELECT min(timeout_at) FROM promises WHERE state = 'pending' AND target IS NOT NULL),"
    " (SELECT min(timeout_at) FROM tasks WHERE timeout_at IS NOT NULL),"
    " (SELECT min(next_run_at) FROM schedules)"
)


@lru_cache(maxsize=32)
def _search_sql(
    table: str,
    cols: str,
    tags_col: str,
    *,
    state: bool,
    tags: bool,
    cursor: bool,
    origin: bool = False,
) -> str:
    """One statement per shape of search, so every shape keeps an index-friendly plan (an
    ``:x IS NULL OR ...`` predicate would stop the seek past the cursor)."""
    where = []
    if origin:
        # Redundant with the tag match, but lets SQLite walk promises_origin (a tree's
        # promises) instead of every promise.
        where.append("origin = :origin")
    if state:
        where.append("state = :state")
    if cursor:
        where.append("id > :cursor")
    if tags:
        where.append(_TAGS_MATCH.format(col=tags_col))
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {cols} FROM {table}{clause} ORDER BY id LIMIT :limit"


class SqliteTx:
    """The ``Tx`` of one open transaction on ``conn`` (owned by the writer thread)."""

    __slots__ = ("_conn", "_cur")

    def __init__(self, conn: sqlite3.Connection) -> None:
        # One cursor for every statement: ``Connection.execute`` would allocate a cursor
        # (and register a weak reference to it) per statement, ~6 per operation.  Sharing
        # it is safe because every method consumes its results before returning.
        self._conn = conn
        self._cur = conn.cursor()

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        row = self._cur.execute(_P_GET, (id,)).fetchone()
        return None if row is None else _promise(row)

    def insert_promise(self, promise: Promise) -> None:
        self._cur.execute(_P_INSERT, rows.promise_params(promise))

    def update_promise(self, promise: Promise) -> None:
        """Write ``state``, ``value`` and ``settledAt``: the fields that change (tx.py); the
        rest of a promise is fixed at insert."""
        v = promise.value
        self._cur.execute(
            _P_UPDATE, (promise.state, _json(v.headers), v.data, promise.settledAt, promise.id)
        )

    def search_promises(
        self,
        state: PromiseState | None,
        tags: Mapping[str, str],
        limit: int,
        cursor: str | None,
    ) -> list[Promise]:
        sql = _search_sql(
            "promises",
            _P_COLS,
            "tags",
            state=state is not None,
            tags=bool(tags),
            cursor=cursor is not None,
            origin=ORIGIN in tags,
        )
        params = {
            "origin": tags.get(ORIGIN),
            "state": state,
            "cursor": cursor,
            "tags": _json(tags),
            "ntags": len(tags),
            "limit": limit,
        }
        return [_promise(r) for r in self._cur.execute(sql, params)]

    def branch_promises(self, branch: str) -> list[Promise]:
        return [_promise(r) for r in self._cur.execute(_P_BRANCH, (branch,))]

    def due_promises(self, time: int) -> list[Promise]:
        return [_promise(r) for r in self._cur.execute(_P_DUE, (time,))]

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        row = self._cur.execute(_T_GET, (id,)).fetchone()
        return None if row is None else _task(row)

    def put_task(self, task: TaskRow) -> None:
        self._cur.execute(_T_PUT, rows.task_params(task))

    def due_tasks(self, time: int) -> list[TaskRow]:
        return [_task(r) for r in self._cur.execute(_T_DUE, (time,))]

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        self._cur.execute(_C_ADD, (awaited, awaiter, ready))

    def callbacks_on(self, awaited: str) -> list[Callback]:
        return [Callback(a, w, bool(r)) for a, w, r in self._cur.execute(_C_ON, (awaited,))]

    def mark_ready(self, awaited: str) -> None:
        self._cur.execute(_C_MARK, (awaited,))

    def count_ready(self, awaiter: str) -> int:
        return int(self._cur.execute(_C_COUNT_READY, (awaiter,)).fetchone()[0])

    def delete_ready(self, awaiter: str) -> None:
        self._cur.execute(_C_DELETE_READY, (awaiter,))

    def delete_callbacks_of(self, awaiter: str) -> None:
        self._cur.execute(_C_DELETE_OF, (awaiter,))

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        self._cur.execute(_C_DELETE_ONE, (awaited, awaiter))

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        self._cur.execute(_L_ADD, (promise_id, address))

    def take_listeners(self, promise_id: str) -> list[str]:
        # RETURNING gives no order guarantee: sort here.
        return sorted(a for (a,) in self._cur.execute(_L_TAKE, (promise_id,)).fetchall())

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        self._cur.execute(_X_PUT, (task_id, version, address))

    def put_unblock(self, promise_id: str, address: str) -> None:
        self._cur.execute(_U_PUT, (promise_id, address))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = sorted(
            (Execute(t, v, a) for t, v, a in self._cur.execute(_X_CLAIM, (limit,)).fetchall()),
            key=lambda e: e.task_id,
        )
        pairs = sorted(self._cur.execute(_U_CLAIM, (limit,)).fetchall())
        if not pairs:
            return executes, []
        ids = _encode(sorted({pid for pid, _ in pairs})).decode()
        promises = {p.id: p for p in map(_promise, self._cur.execute(_P_BY_IDS, (ids,)))}
        # A pair whose promise is gone (not possible through the engine) is dropped, claimed.
        unblocks = [(promises[pid], addr) for pid, addr in pairs if pid in promises]
        return executes, unblocks

    # -- schedules ------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None:
        row = self._cur.execute(_S_GET, (id,)).fetchone()
        return None if row is None else _schedule(row)

    def put_schedule(self, schedule: Schedule) -> None:
        self._cur.execute(_S_PUT, rows.schedule_params(schedule))

    def delete_schedule(self, id: str) -> bool:
        return self._cur.execute(_S_DELETE, (id,)).rowcount > 0

    def search_schedules(
        self, tags: Mapping[str, str], limit: int, cursor: str | None
    ) -> list[Schedule]:
        sql = _search_sql(
            "schedules",
            _S_COLS,
            "promise_tags",
            state=False,
            tags=bool(tags),
            cursor=cursor is not None,
        )
        params = {"cursor": cursor, "tags": _json(tags), "ntags": len(tags), "limit": limit}
        return [_schedule(r) for r in self._cur.execute(sql, params)]

    def due_schedules(self, time: int) -> list[Schedule]:
        return [_schedule(r) for r in self._cur.execute(_S_DUE, (time,))]

    # -- whole-store views ----------------------------------------------------------------
    def all_promises(self) -> list[Promise]:
        return [_promise(r) for r in self._cur.execute(_P_ALL)]

    def all_tasks(self) -> list[TaskRow]:
        return [_task(r) for r in self._cur.execute(_T_ALL)]

    def all_callbacks(self) -> list[Callback]:
        return [Callback(a, w, bool(r)) for a, w, r in self._cur.execute(_C_ALL)]

    def all_listeners(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._cur.execute(_L_ALL)]

    def all_executes(self) -> list[Execute]:
        return [Execute(t, v, a) for t, v, a in self._cur.execute(_X_ALL)]

    def all_unblocks(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._cur.execute(_U_ALL)]

    def reset(self) -> None:
        for table in _TABLES:
            self._cur.execute(f"DELETE FROM {table}")  # fixed table names, never input

    def next_deadline(self) -> int | None:
        row = self._cur.execute(_NEXT_DEADLINE).fetchone()
        return min((int(at) for at in row if at is not None), default=None)

    def has_outbox(self) -> bool:
        return bool(self._cur.execute(_HAS_OUTBOX).fetchone()[0])

    # -- store internals (not part of Tx) -------------------------------------------------
    def select_one(self) -> bool:
        return bool(self._cur.execute("SELECT 1").fetchone()[0] == 1)
