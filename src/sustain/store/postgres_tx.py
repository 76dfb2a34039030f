"""``PostgresTx``: the row-level ``Tx`` of sustain.store.tx as SQL on one PostgreSQL connection.

The transaction is the store's (postgres.py opens it at READ COMMITTED and commits or rolls
back); a ``PostgresTx`` only runs statements on its cursor.  Columns, JSON text and the copies
of the reserved tags are exactly SQLite's (sqlite_tx.py); ids compare as bytes (``COLLATE
"C"`` in the schema), so lists come back in the order every store uses.

Locking: what the engine reads in order to write, it reads through this Tx, so the Tx locks
it.

* ``get_promise``, ``get_task`` and ``get_schedule`` are ``SELECT ... FOR UPDATE``: an
  operation holds the rows it decides on until it commits, and a concurrent operation on the
  same promise, task or schedule waits, then sees the committed result (READ COMMITTED
  re-reads a row that changed while it waited).  A row that does not exist yet cannot be
  locked: two creates of one id both insert, the second gets a unique violation, and the store
  runs it again, which then finds the row (postgres.py).
* Rows the engine reads without a ``get_*`` are guarded by a lock it already holds: callbacks
  on ``P`` are only added, marked or dropped by operations holding ``P`` (settle, suspend,
  register_callback), listeners are taken with ``DELETE ... RETURNING`` (each one by one
  taker), upserts (``ON CONFLICT``) are atomic.
* Background work is claimed, not waited for: ``due_promises``, ``due_tasks``,
  ``due_schedules`` and ``claim_outbox`` lock with ``FOR UPDATE SKIP LOCKED``, in id order.
  A row another transaction holds is left for the next pass (the timer loop comes back at
  once when something stayed due), so several replicas can run the loops without waiting on
  each other or doing anything twice; a row whose timer moved while it was held no longer
  matches and is not returned.
  ``claim_outbox`` deletes what it returns (the contract's single-process claim); a server
  replica claims through postgres_cluster.py instead, which marks entries and routes poll
  messages to the replica holding the stream, using the ``poll_*`` columns written here.
* Order: the engine reads a promise before the task of the same id.  ``due_tasks`` keeps that
  order by locking the tasks' promises first.  Locks across different ids follow the engine's
  reading order, which two operations may take in opposite directions (suspend of ``a`` on
  ``b`` against settle of ``b`` with ``a`` waiting): PostgreSQL detects the cycle, aborts one
  transaction and the store runs it again.

Text columns cannot hold NUL characters in PostgreSQL, and jsonb (used to search tags) cannot
hold ``\\u0000``: writes carrying one raise ``psycopg.DataError`` here, before anything is
sent, and the store answers the request 400 (postgres.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import psycopg

from sustain.protocol.addresses import parse_address
from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import ORIGIN
from sustain.store import rows
from sustain.store.rows import encode as _encode
from sustain.store.rows import json_text as _json
from sustain.store.rows import promise as _promise
from sustain.store.rows import schedule as _schedule
from sustain.store.rows import task as _task
from sustain.store.tx import Callback, Execute, Listener, TaskRow

NUL_MESSAGE = "PostgreSQL text fields cannot contain NUL (0x00) bytes"


# -- promises ---------------------------------------------------------------------------------
_P_COLS = (
    "id, state, param_headers, param_data, value_headers, value_data, tags,"
    " timeout_at, created_at, settled_at"
)
_P_GET = f"SELECT {_P_COLS} FROM promises WHERE id = %s FOR UPDATE"
_P_INSERT = (
    f"INSERT INTO promises ({_P_COLS}, target, branch, origin)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_P_UPDATE = (
    "UPDATE promises SET state = %s, value_headers = %s, value_data = %s, settled_at = %s"
    " WHERE id = %s"
)
_P_BRANCH = f"SELECT {_P_COLS} FROM promises WHERE branch = %s ORDER BY id"
_P_DUE = (
    f"SELECT {_P_COLS} FROM promises"
    " WHERE state = 'pending' AND target IS NOT NULL AND timeout_at <= %s"
    " ORDER BY id FOR UPDATE SKIP LOCKED"
)
_P_ALL = f"SELECT {_P_COLS} FROM promises ORDER BY id"
_P_BY_IDS = f"SELECT {_P_COLS} FROM promises WHERE id = ANY(%s)"

# -- tasks ------------------------------------------------------------------------------------
_T_COLS = "id, state, version, timeout_type, timeout_at, pid, ttl"
_T_GET = f"SELECT {_T_COLS} FROM tasks WHERE id = %s FOR UPDATE"
_T_PUT = (
    f"INSERT INTO tasks ({_T_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET"
    " state = excluded.state, version = excluded.version, timeout_type = excluded.timeout_type,"
    " timeout_at = excluded.timeout_at, pid = excluded.pid, ttl = excluded.ttl"
)
# due_tasks, step 1: claim the promises of the due tasks (promise before task, as the engine
# reads them everywhere else); step 2: the due tasks whose promise was claimed or which have
# none (the contract allows a bare task row).
_T_DUE_OWNERS = (
    "SELECT p.id FROM tasks t JOIN promises p ON p.id = t.id"
    " WHERE t.timeout_at <= %s ORDER BY p.id FOR UPDATE OF p SKIP LOCKED"
)
_T_DUE = (
    f"SELECT {_T_COLS} FROM tasks t WHERE t.timeout_at <= %s"
    " AND (t.id = ANY(%s) OR NOT EXISTS (SELECT 1 FROM promises p WHERE p.id = t.id))"
    " ORDER BY t.id FOR UPDATE OF t SKIP LOCKED"
)
_T_ALL = f"SELECT {_T_COLS} FROM tasks ORDER BY id"

# -- callbacks --------------------------------------------------------------------------------
_C_ADD = (
    "INSERT INTO callbacks (awaited, awaiter, ready) VALUES (%s, %s, %s)"
    " ON CONFLICT (awaited, awaiter) DO UPDATE SET ready = callbacks.ready OR excluded.ready"
)
_C_ON = "SELECT awaited, awaiter, ready FROM callbacks WHERE awaited = %s ORDER BY awaiter"
_C_MARK = "UPDATE callbacks SET ready = true WHERE awaited = %s AND NOT ready"
_C_COUNT_READY = "SELECT count(*) FROM callbacks WHERE awaiter = %s AND ready"
_C_DELETE_READY = "DELETE FROM callbacks WHERE awaiter = %s AND ready"
_C_DELETE_OF = "DELETE FROM callbacks WHERE awaiter = %s"
_C_DELETE_ONE = "DELETE FROM callbacks WHERE awaited = %s AND awaiter = %s"
_C_ALL = "SELECT awaited, awaiter, ready FROM callbacks ORDER BY awaiter, awaited"

# -- listeners --------------------------------------------------------------------------------
_L_ADD = "INSERT INTO listeners (promise_id, address) VALUES (%s, %s) ON CONFLICT DO NOTHING"
_L_TAKE = "DELETE FROM listeners WHERE promise_id = %s RETURNING address"
_L_ALL = "SELECT promise_id, address FROM listeners ORDER BY promise_id, address"

# -- outbox -----------------------------------------------------------------------------------
# The poll_* columns route the entry to the replica holding a matching poll connection
# (postgres_cluster.py); a newer execute of the same task is a new message: queued now and
# unclaimed, so a replica that claimed the older one cannot delete it (its ack names the old
# version and its claim).
_X_PUT = (
    "INSERT INTO outgoing_execute (task_id, version, address, poll_cast, poll_group, poll_id)"
    " VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (task_id) DO UPDATE SET version = excluded.version, address = excluded.address,"
    " poll_cast = excluded.poll_cast, poll_group = excluded.poll_group,"
    " poll_id = excluded.poll_id, queued_at = now(), claimed_by = NULL, claimed_at = NULL"
)
# SKIP LOCKED: two replicas claiming at once take disjoint entries, neither waits.
_X_CLAIM = (
    "DELETE FROM outgoing_execute WHERE task_id IN"
    " (SELECT task_id FROM outgoing_execute ORDER BY task_id LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING task_id, version, address"
)
_X_ALL = "SELECT task_id, version, address FROM outgoing_execute ORDER BY task_id"
_U_PUT = (
    "INSERT INTO outgoing_unblock (promise_id, address, poll_cast, poll_group, poll_id)"
    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
)
_U_CLAIM = (
    "DELETE FROM outgoing_unblock WHERE (promise_id, address) IN"
    " (SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address"
    " LIMIT %s FOR UPDATE SKIP LOCKED)"
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
_S_GET = f"SELECT {_S_COLS} FROM schedules WHERE id = %s FOR UPDATE"
_S_PUT = (
    f"INSERT INTO schedules ({_S_COLS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, promise_id = excluded.promise_id,"
    " promise_timeout = excluded.promise_timeout,"
    " promise_param_headers = excluded.promise_param_headers,"
    " promise_param_data = excluded.promise_param_data, promise_tags = excluded.promise_tags,"
    " created_at = excluded.created_at, next_run_at = excluded.next_run_at,"
    " last_run_at = excluded.last_run_at"
)
_S_DELETE = "DELETE FROM schedules WHERE id = %s"
_S_DUE = (
    f"SELECT {_S_COLS} FROM schedules WHERE next_run_at <= %s ORDER BY id FOR UPDATE SKIP LOCKED"
)
_S_ALL = f"SELECT {_S_COLS} FROM schedules ORDER BY id"

# -- whole store ------------------------------------------------------------------------------
_RESET_TABLES = (
    "promises",
    "tasks",
    "callbacks",
    "listeners",
    "outgoing_execute",
    "outgoing_unblock",
    "schedules",
)
_NEXT_DEADLINE = (
    "SELECT"
    " (SELECT min(timeout_at) FROM promises WHERE state = 'pending' AND target IS NOT NULL),"
    " (SELECT min(timeout_at) FROM tasks WHERE timeout_at IS NOT NULL),"
    " (SELECT min(next_run_at) FROM schedules)"
)


def _tags_json(tags: Mapping[str, str]) -> str:
    # The text column would take "\u0000", but the jsonb cast of tag search would fail on it.
    for key, value in tags.items():
        if "\x00" in key or "\x00" in value:
            raise psycopg.DataError(NUL_MESSAGE)
    return _encode(tags).decode()


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
    """One statement per shape of search (an ``x IS NULL OR ...`` predicate would defeat the
    index seek past the cursor).  ``@>`` on jsonb: every pair of the filter is in the tags,
    values compared as exact strings."""
    where = []
    if origin:
        # Redundant with the tag match, but walks promises_origin (one tree's promises).
        where.append("origin = %(origin)s")
    if state:
        where.append("state = %(state)s")
    if cursor:
        where.append("id > %(cursor)s")
    if tags:
        where.append(f"{tags_col}::jsonb @> %(tags)s::jsonb")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return f"SELECT {cols} FROM {table}{clause} ORDER BY id LIMIT %(limit)s"


def _route(address: str) -> tuple[str | None, str | None, str | None]:
    """(cast, group, id) of a ``poll://`` address, decoded exactly as the poll registry
    compares them; (None, None, None) for any other scheme or an invalid address."""
    parsed = parse_address(address)
    if parsed is None or parsed.scheme != "poll":
        return None, None, None
    return parsed.cast, parsed.group, parsed.id


class PostgresTx:
    """The ``Tx`` of one open transaction, running statements on ``cur``."""

    __slots__ = ("_cur",)

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def cursor(self) -> psycopg.Cursor[Any]:
        """The transaction's cursor, for the cluster's own statements (postgres_cluster.py)."""
        return self._cur

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return self._cur.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[Any]:
        return self._cur.execute(sql, params).fetchall()

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        row = self._one(_P_GET, (id,))
        return None if row is None else _promise(row)

    def insert_promise(self, promise: Promise) -> None:
        self._cur.execute(_P_INSERT, rows.promise_params(promise, _tags_json))

    def update_promise(self, promise: Promise) -> None:
        """Write ``state``, ``value`` and ``settledAt``, the fields that change (tx.py)."""
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
            "tags": _tags_json(tags),
            "limit": limit,
        }
        return [_promise(r) for r in self._all(sql, params)]

    def branch_promises(self, branch: str) -> list[Promise]:
        return [_promise(r) for r in self._all(_P_BRANCH, (branch,))]

    def due_promises(self, time: int) -> list[Promise]:
        return [_promise(r) for r in self._all(_P_DUE, (time,))]

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        row = self._one(_T_GET, (id,))
        return None if row is None else _task(row)

    def put_task(self, task: TaskRow) -> None:
        self._cur.execute(_T_PUT, rows.task_params(task))

    def due_tasks(self, time: int) -> list[TaskRow]:
        owners = [id for (id,) in self._all(_T_DUE_OWNERS, (time,))]
        return [_task(r) for r in self._all(_T_DUE, (time, owners))]

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        self._cur.execute(_C_ADD, (awaited, awaiter, ready))

    def callbacks_on(self, awaited: str) -> list[Callback]:
        return [Callback(a, w, bool(r)) for a, w, r in self._all(_C_ON, (awaited,))]

    def mark_ready(self, awaited: str) -> None:
        self._cur.execute(_C_MARK, (awaited,))

    def count_ready(self, awaiter: str) -> int:
        row = self._one(_C_COUNT_READY, (awaiter,))
        return 0 if row is None else int(row[0])

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
        # RETURNING gives no order guarantee: sort here (code points = UTF-8 byte order).
        return sorted(a for (a,) in self._all(_L_TAKE, (promise_id,)))

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        self._cur.execute(_X_PUT, (task_id, version, address, *_route(address)))

    def put_unblock(self, promise_id: str, address: str) -> None:
        self._cur.execute(_U_PUT, (promise_id, address, *_route(address)))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = sorted(
            (Execute(t, v, a) for t, v, a in self._all(_X_CLAIM, (limit,))),
            key=lambda e: e.task_id,
        )
        pairs = sorted(self._all(_U_CLAIM, (limit,)))
        if not pairs:
            return executes, []
        ids = sorted({pid for pid, _ in pairs})
        promises = {p.id: p for p in map(_promise, self._all(_P_BY_IDS, (ids,)))}
        # A pair whose promise is gone (not possible through the engine) is dropped, claimed.
        unblocks = [(promises[pid], addr) for pid, addr in pairs if pid in promises]
        return executes, unblocks

    # -- schedules ------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None:
        row = self._one(_S_GET, (id,))
        return None if row is None else _schedule(row)

    def put_schedule(self, schedule: Schedule) -> None:
        self._cur.execute(_S_PUT, rows.schedule_params(schedule, _tags_json))

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
        params = {"cursor": cursor, "tags": _tags_json(tags), "limit": limit}
        return [_schedule(r) for r in self._all(sql, params)]

    def due_schedules(self, time: int) -> list[Schedule]:
        return [_schedule(r) for r in self._all(_S_DUE, (time,))]

    # -- whole-store views ----------------------------------------------------------------
    def all_promises(self) -> list[Promise]:
        return [_promise(r) for r in self._all(_P_ALL)]

    def all_tasks(self) -> list[TaskRow]:
        return [_task(r) for r in self._all(_T_ALL)]

    def all_callbacks(self) -> list[Callback]:
        return [Callback(a, w, bool(r)) for a, w, r in self._all(_C_ALL)]

    def all_listeners(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._all(_L_ALL)]

    def all_executes(self) -> list[Execute]:
        return [Execute(t, v, a) for t, v, a in self._all(_X_ALL)]

    def all_unblocks(self) -> list[Listener]:
        return [Listener(p, a) for p, a in self._all(_U_ALL)]

    def reset(self) -> None:
        # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would wait for every other
        # replica's open transaction.  Fixed table names, never input.
        for table in _RESET_TABLES:
            self._cur.execute(f"DELETE FROM {table}")

    def next_deadline(self) -> int | None:
        row = self._one(_NEXT_DEADLINE, ())
        if row is None:
            return None
        return min((int(at) for at in row if at is not None), default=None)

    def has_outbox(self) -> bool:
        row = self._one(_HAS_OUTBOX, ())
        return bool(row is not None and row[0])

    # -- store internals (not part of Tx) -------------------------------------------------
    def select_one(self) -> bool:
        row = self._one("SELECT 1", ())
        return row is not None and row[0] == 1
