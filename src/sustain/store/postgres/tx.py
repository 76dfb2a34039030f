"""``PostgresTx``: the row-level ``Tx`` of sustain.store.tx as SQL on one PostgreSQL connection.

The transaction is the store's (postgres.py takes a connection, runs the op on a
``PostgresTx`` and calls ``commit`` or ``abort``); columns, JSON text and the copies of the
reserved tags are exactly SQLite's (sqlite_tx.py); ids compare as bytes (``COLLATE "C"`` in
the schema), so lists come back in the order every store uses.

Round trips
-----------
A round trip to the database, not the statement in it, is what an operation pays most for:
each costs a send, a wake-up of the backend, a wait for its answer and a wake-up of this
thread, on both sides (measured: ~50 us of CPU, against ~8 us for one more indexed statement
in the same trip).  The engine asks for rows one at a time, so the Tx sends as few trips as
it can without changing what runs in the database or in which order:

* **One pipeline per operation** (libpq pipeline mode, on the connection's ``pgconn``): the
  statements are sent as they come and the Tx waits only when the engine needs an answer.
  ``BEGIN`` goes out with the first read, and the writes still queued go out with
  ``COMMIT``: a write answers nothing, so it waits for the next read or the commit.  The
  statements still execute one after the other, in the order the engine issued them, each
  with its own snapshot (READ COMMITTED); a write's error (a unique violation) surfaces at
  the next wait and aborts the operation as before.
* **Read your own rows.**  A promise or task read ``FOR UPDATE`` (or written) in this
  transaction cannot change under it: later reads of the same id answer from memory.  A
  row found missing is remembered too: a concurrent insert of that id makes our own insert
  fail with a unique violation, and the store reruns the operation (postgres.py).
* **The task beside its promise.**  Reading a promise also reads (and locks) the task of the
  same id, in the same trip, right after it: the engine reads a promise before its task
  everywhere, so this is the order it would lock them in anyway.
* **Listeners beside callbacks.**  ``callbacks_on(P)`` also reads the listeners of ``P`` in
  the same statement; ``take_listeners(P)`` then deletes them without asking again.  This is
  sound only because ``P`` is locked by this transaction (listeners of ``P`` are added and
  taken only by operations holding ``P``); otherwise ``take_listeners`` asks the database.
* Statements are prepared once per connection (``prepare``), by name: no parsing or planning
  per execution, and no per-statement bookkeeping in Python.

Measured on W2 (the engine replayed on one connection): 62 statements + 20 BEGIN/COMMIT
round trips per workflow became about 31 trips.

Locking: what the engine reads in order to write, it reads through this Tx, so the Tx locks
it.

* ``get_promise``, ``get_task`` and ``get_schedule`` are ``SELECT ... FOR UPDATE``: an
  operation holds the rows it decides on until it commits, and a concurrent operation on the
  same promise, task or schedule waits, then sees the committed result (READ COMMITTED
  re-reads a row that changed while it waited).  A row that does not exist yet cannot be
  locked: two creates of one id both insert, the second gets a unique violation, and the store
  runs it again, which then finds the row (postgres.py).
* Rows the engine reads without a ``get_*`` are guarded by a lock it already holds: callbacks
  on ``P`` are only added or marked by operations holding ``P`` (settle, suspend,
  register_callback; an awaiter may drop its own, which the engine tolerates), listeners of
  ``P`` are added and taken only by operations holding ``P``, upserts (``ON CONFLICT``) are
  atomic.
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
  transaction and the store runs it again.  Queuing writes does not reorder anything: they
  are sent before the next read, in the order the engine issued them.

The rare statements (searches, timer and outbox claims, whole-store views) and the cluster's
own run through a psycopg cursor on the same connection (``cursor``: the pipeline is flushed
and left first).

Text columns cannot hold NUL characters in PostgreSQL, and jsonb (used to search tags) cannot
hold ``\\u0000``: writes carrying one raise ``psycopg.DataError`` here, before anything is
sent, and the store answers the request 400 (postgres.py).
"""

from __future__ import annotations

import select
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from msgspec.structs import replace
from psycopg import errors as e
from psycopg import pq

from sustain.protocol.addresses import parse_address
from sustain.protocol.limits import promise_size, schedule_size
from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import ORIGIN
from sustain.store.sql import rows
from sustain.store.sql.rows import encode as _encode
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import schedule as _schedule
from sustain.store.sql.rows import task as _task
from sustain.store.tx import Callback, Execute, Listener, TaskRow

NUL_MESSAGE = "PostgreSQL text fields cannot contain NUL (0x00) bytes"

# -- promises ---------------------------------------------------------------------------------
_P_COLS = (
    "id, state, param_headers, param_data, value_headers, value_data, tags,"
    " timeout_at, created_at, settled_at"
)
_P_DUE = (
    f"SELECT {_P_COLS} FROM promises"
    " WHERE state = 'pending' AND target IS NOT NULL AND timeout_at <= %s"
    " ORDER BY id FOR UPDATE SKIP LOCKED"
)
_P_ALL = f"SELECT {_P_COLS} FROM promises ORDER BY id"
_P_BY_IDS = f"SELECT {_P_COLS} FROM promises WHERE id = ANY(%s)"

# -- tasks ------------------------------------------------------------------------------------
_T_COLS = "id, state, version, timeout_type, timeout_at, pid, ttl"
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

# -- callbacks, listeners ---------------------------------------------------------------------
_C_ALL = "SELECT awaited, awaiter, ready FROM callbacks ORDER BY awaiter, awaited"
_L_ALL = "SELECT promise_id, address FROM listeners ORDER BY promise_id, address"

# -- outbox -----------------------------------------------------------------------------------
# SKIP LOCKED: two replicas claiming at once take disjoint entries, neither waits.
_X_CLAIM = (
    "DELETE FROM outgoing_execute WHERE task_id IN"
    " (SELECT task_id FROM outgoing_execute ORDER BY task_id LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING task_id, version, address"
)
_X_ALL = "SELECT task_id, version, address FROM outgoing_execute ORDER BY task_id"
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

# -- the prepared statements of the hot path (name -> SQL, $n parameters) ----------------------
P_GET = b"sustain_p_get"
P_INSERT = b"sustain_p_insert"
P_UPDATE = b"sustain_p_update"
P_BRANCH = b"sustain_p_branch"
T_GET = b"sustain_t_get"
T_BESIDE = b"sustain_t_beside"
T_PUT = b"sustain_t_put"
C_ADD = b"sustain_c_add"
C_ON = b"sustain_c_on"
C_MARK = b"sustain_c_mark"
C_COUNT_READY = b"sustain_c_count_ready"
C_DELETE_READY = b"sustain_c_delete_ready"
C_DELETE_OF = b"sustain_c_delete_of"
C_DELETE_ONE = b"sustain_c_delete_one"
L_ADD = b"sustain_l_add"
L_TAKE = b"sustain_l_take"
L_DELETE = b"sustain_l_delete"
X_PUT = b"sustain_x_put"
U_PUT = b"sustain_u_put"
S_GET = b"sustain_s_get"
S_PUT = b"sustain_s_put"
S_DELETE = b"sustain_s_delete"

PREPARED: dict[bytes, str] = {
    P_GET: f"SELECT {_P_COLS} FROM promises WHERE id = $1 FOR UPDATE",
    P_INSERT: (
        f"INSERT INTO promises ({_P_COLS}, target, branch, origin)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ),
    P_UPDATE: (
        "UPDATE promises SET state = $1, value_headers = $2, value_data = $3, settled_at = $4"
        " WHERE id = $5"
    ),
    P_BRANCH: f"SELECT {_P_COLS} FROM promises WHERE branch = $1 ORDER BY id",
    T_GET: f"SELECT {_T_COLS} FROM tasks WHERE id = $1 FOR UPDATE",
    # Sent right after P_GET of the same id (module docstring): the task (kind 0, locked),
    # the callbacks on the promise (kind 1) and its listeners (kind 2).
    T_BESIDE: (
        f"WITH t AS (SELECT {_T_COLS} FROM tasks WHERE id = $1 FOR UPDATE)"
        " SELECT 0, state, version, timeout_type, timeout_at, pid, ttl, NULL::boolean,"
        " NULL::text FROM t"
        " UNION ALL SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, ready, awaiter"
        " FROM callbacks WHERE awaited = $1"
        " UNION ALL SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, address"
        " FROM listeners WHERE promise_id = $1"
    ),
    T_PUT: (
        f"INSERT INTO tasks ({_T_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO UPDATE SET"
        " state = excluded.state, version = excluded.version,"
        " timeout_type = excluded.timeout_type, timeout_at = excluded.timeout_at,"
        " pid = excluded.pid, ttl = excluded.ttl"
    ),
    C_ADD: (
        "INSERT INTO callbacks (awaited, awaiter, ready) VALUES ($1, $2, $3)"
        " ON CONFLICT (awaited, awaiter) DO UPDATE SET ready = callbacks.ready OR excluded.ready"
    ),
    # The callbacks on $1 (kind 0) and its listeners (kind 1) in one trip (module docstring).
    C_ON: (
        "SELECT 0, awaiter, ready FROM callbacks WHERE awaited = $1"
        " UNION ALL SELECT 1, address, NULL FROM listeners WHERE promise_id = $1"
    ),
    C_MARK: "UPDATE callbacks SET ready = true WHERE awaited = $1 AND NOT ready",
    C_COUNT_READY: "SELECT count(*) FROM callbacks WHERE awaiter = $1 AND ready",
    C_DELETE_READY: "DELETE FROM callbacks WHERE awaiter = $1 AND ready",
    C_DELETE_OF: "DELETE FROM callbacks WHERE awaiter = $1",
    C_DELETE_ONE: "DELETE FROM callbacks WHERE awaited = $1 AND awaiter = $2",
    L_ADD: ("INSERT INTO listeners (promise_id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
    L_TAKE: "DELETE FROM listeners WHERE promise_id = $1 RETURNING address",
    L_DELETE: "DELETE FROM listeners WHERE promise_id = $1",
    # The poll_* columns route the entry to the replica holding a matching poll connection
    # (postgres_cluster.py); a newer execute of the same task is a new message: queued now
    # and unclaimed, so a replica that claimed the older one cannot delete it (its ack names
    # the old version and its claim).
    X_PUT: (
        "INSERT INTO outgoing_execute (task_id, version, address, poll_cast, poll_group,"
        " poll_id) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (task_id) DO UPDATE SET version = excluded.version,"
        " address = excluded.address, poll_cast = excluded.poll_cast,"
        " poll_group = excluded.poll_group, poll_id = excluded.poll_id, queued_at = now(),"
        " claimed_by = NULL, claimed_at = NULL"
    ),
    U_PUT: (
        "INSERT INTO outgoing_unblock (promise_id, address, poll_cast, poll_group, poll_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
    ),
    S_GET: f"SELECT {_S_COLS} FROM schedules WHERE id = $1 FOR UPDATE",
    S_PUT: (
        f"INSERT INTO schedules ({_S_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (id) DO UPDATE SET cron = excluded.cron,"
        " promise_id = excluded.promise_id, promise_timeout = excluded.promise_timeout,"
        " promise_param_headers = excluded.promise_param_headers,"
        " promise_param_data = excluded.promise_param_data,"
        " promise_tags = excluded.promise_tags, created_at = excluded.created_at,"
        " next_run_at = excluded.next_run_at, last_run_at = excluded.last_run_at"
    ),
    S_DELETE: "DELETE FROM schedules WHERE id = $1",
}


def prepare(conn: psycopg.Connection[Any]) -> None:
    """Prepare ``PREPARED`` on a new connection (the pool's configure step), in one trip."""
    pg = conn.pgconn
    poller = _poller(pg)
    pg.enter_pipeline_mode()
    try:
        for name, sql in PREPARED.items():
            pg.send_prepare(name, sql.encode())
        pg.pipeline_sync()
        _flush(pg)
        error: pq.abc.PGresult | None = None
        for _ in PREPARED:
            res = _next(pg, poller)
            if res is not None and res.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = res
            _next(pg, poller)  # the end of that statement's results
        _next(pg, poller)  # the sync
    finally:
        if pg.status == pq.ConnStatus.OK:
            pg.exit_pipeline_mode()
    if error is not None:
        raise e.error_from_result(error, encoding="utf-8")


# -- parameters and result values (text format) ----------------------------------------------
def _text(s: str) -> bytes:
    b = s.encode()
    if b"\x00" in b:
        raise psycopg.DataError(NUL_MESSAGE)
    return b


def _param(v: object) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, str):
        return _text(v)
    if isinstance(v, bool):
        return b"t" if v else b"f"
    if isinstance(v, int):
        return b"%d" % v
    raise TypeError(f"cannot send {type(v).__name__} to PostgreSQL")


def _params(values: Sequence[object]) -> list[bytes | None]:
    return [_param(v) for v in values]


# Result values arrive as text: NOT NULL columns through ``_s``/``_i``, nullable ones through
# ``_str``/``_int``.
def _s(b: bytes | None) -> str:
    assert b is not None
    return b.decode()


def _i(b: bytes | None) -> int:
    assert b is not None
    return int(b)


def _str(b: bytes | None) -> str | None:
    return None if b is None else b.decode()


def _int(b: bytes | None) -> int | None:
    return None if b is None else int(b)


def _promise_at(res: pq.abc.PGresult, i: int) -> Promise:
    v = res.get_value
    return _promise((
        _s(v(i, 0)), _s(v(i, 1)), _str(v(i, 2)), _str(v(i, 3)), _str(v(i, 4)), _str(v(i, 5)),
        _s(v(i, 6)), _i(v(i, 7)), _i(v(i, 8)), _int(v(i, 9)),
    ))  # fmt: skip


def _task_at(res: pq.abc.PGresult, i: int, col: int = 0, id: str | None = None) -> TaskRow:
    """The task at row ``i``, its columns from ``col`` on (``id`` given: without the id)."""
    v = res.get_value
    if id is None:
        id = _s(v(i, col))
        col += 1
    return _task((
        id, _s(v(i, col)), _i(v(i, col + 1)), _int(v(i, col + 2)), _int(v(i, col + 3)),
        _str(v(i, col + 4)), _i(v(i, col + 5)),
    ))  # fmt: skip


def _schedule_at(res: pq.abc.PGresult, i: int) -> Schedule:
    v = res.get_value
    return _schedule((
        _s(v(i, 0)), _s(v(i, 1)), _s(v(i, 2)), _i(v(i, 3)), _str(v(i, 4)), _str(v(i, 5)),
        _s(v(i, 6)), _i(v(i, 7)), _i(v(i, 8)), _int(v(i, 9)),
    ))  # fmt: skip


def _flush(pg: pq.abc.PGconn) -> None:
    """Send the whole output buffer.  psycopg puts its connections in nonblocking mode, so a
    large statement (a big value) may not fit the socket at once: wait until it can write
    more, reading what the server answers meanwhile (it may be blocked writing to us)."""
    poller: select.poll | None = None
    while pg.flush():
        if poller is None:
            poller = select.poll()
            poller.register(pg.socket, select.POLLIN | select.POLLOUT)
        if any(ev & select.POLLIN for _, ev in poller.poll()):  # releases the GIL
            pg.consume_input()


def _poller(pg: pq.abc.PGconn) -> select.poll:
    poller = select.poll()  # not select.select: a server may hold more than 1,024 sockets
    poller.register(pg.socket, select.POLLIN)
    return poller


def _next(pg: pq.abc.PGconn, poller: select.poll) -> pq.abc.PGresult | None:
    """The next result of the pipeline.  libpq's ``PQgetResult`` would block holding the GIL
    (every other thread of the server would stop): wait for the socket here instead."""
    while pg.is_busy():
        poller.poll()  # releases the GIL
        pg.consume_input()
    return pg.get_result()


def _tags_json(tags: Mapping[str, str]) -> str:
    # The text column would take "\u0000", but the jsonb cast of tag search would fail on it.
    for key, value in tags.items():
        if "\x00" in key or "\x00" in value:
            raise psycopg.DataError(NUL_MESSAGE)
    return _encode(tags).decode()


T = TypeVar("T")
# Rows per FETCH of a size-bounded search: a few first, then as many as the budget left
# holds at the rows' mean size so far (a search of small rows takes few round trips).
_FIRST_FETCH = 8
_MAX_FETCH = 256


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


Handler = Callable[[pq.abc.PGresult], None] | None
_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
_BUSY = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)


class PostgresTx:
    """The ``Tx`` of one transaction on ``conn`` (a pooled psycopg connection in autocommit
    mode, idle): nothing is sent before the first statement; ``commit`` or ``abort`` ends it."""

    __slots__ = (
        "_alive",
        "_begin",
        "_callbacks",
        "_conn",
        "_handlers",
        "_listeners",
        "_pg",
        "_piped",
        "_poller",
        "_promises",
        "_tasks",
        "committing",
        "lost",
    )

    def __init__(self, conn: psycopg.Connection[Any], durable: bool = True) -> None:
        self._conn = conn
        self._pg = conn.pgconn
        self._poller = _poller(self._pg)
        # Result handlers of the statements sent since the last sync, in order.
        self._handlers: list[Handler] = []
        self._piped = False
        # Statements that open the transaction, sent with the first statement (None: sent).
        self._begin: tuple[bytes, ...] | None = (
            (b"BEGIN",) if durable else (b"BEGIN", b"SET LOCAL synchronous_commit = off")
        )
        # Rows this transaction holds (locked or written), None = known missing.
        self._promises: dict[str, Promise | None] = {}
        self._tasks: dict[str, TaskRow | None] = {}
        # Callbacks on (awaiter -> ready) and listeners of promises this transaction holds,
        # read after the promise's lock and kept up to date with this transaction's writes.
        self._callbacks: dict[str, dict[str, bool]] = {}
        self._listeners: dict[str, list[str]] = {}
        self._alive = False  # a trip of this transaction was answered
        self.committing = False  # the final trip (writes + COMMIT) was sent
        self.lost = False  # the connection broke, and was closed

    # -- the pipeline ---------------------------------------------------------------------
    def _open(self) -> None:
        """Enter pipeline mode and queue the transaction's start if not done yet."""
        pg = self._pg
        if not self._piped:
            pg.enter_pipeline_mode()
            self._piped = True
        if self._begin is not None:
            for sql in self._begin:
                pg.send_query_params(sql, None)
                self._handlers.append(None)
            self._begin = None

    def _send(self, name: bytes, params: Sequence[bytes | None], handler: Handler = None) -> None:
        self._open()
        self._pg.send_query_prepared(name, params)
        self._handlers.append(handler)

    def _sync(self) -> None:
        """Send everything queued and take every answer, in order; raise the first error
        (the statements after it were skipped by the server)."""
        handlers = self._handlers
        if not handlers:
            return
        self._handlers = []
        pg = self._pg
        try:
            pg.pipeline_sync()
            _flush(pg)
            results = []
            for _ in handlers:
                res = _next(pg, self._poller)
                if res is None:
                    break  # connection lost: checked below
                results.append(res)
                _next(pg, self._poller)  # None: the end of this statement's results
            last = _next(pg, self._poller)
        except psycopg.OperationalError:  # the socket closed under libpq
            self._lost()
            raise
        fatal = next((res for res in results if _ends_session(res)), None)
        if (
            pg.status != pq.ConnStatus.OK
            or last is None
            or last.status != pq.ExecStatus.PIPELINE_SYNC
            or fatal is not None
        ):
            # The backend went away mid-pipeline (pg_terminate_backend, a crash, a failover):
            # libpq may hand over the backend's FATAL error, and stop short of the sync,
            # before it notices that the socket closed.  Either way the session is over.
            message = pg.get_error_message()  # before the close, which clears it
            self._lost()
            if fatal is not None:
                error = e.error_from_result(fatal, encoding="utf-8")
                if isinstance(error, psycopg.OperationalError):
                    raise error
                # e.g. idle_in_transaction_session_timeout's FATAL (25P03): still a lost
                # connection to the store, never the op's own error.
                raise e.OperationalError(f"connection lost: {error}") from error
            raise e.OperationalError(f"connection lost: {message}")
        self._alive = True
        # Out of pipeline mode between trips (a local switch, no trip): a psycopg cursor taken
        # earlier from ``cursor`` keeps working after the Tx's own statements.
        pg.exit_pipeline_mode()
        self._piped = False
        for handler, res in zip(handlers, results, strict=False):  # shorter: lost above
            if res.status not in _OK:
                raise e.error_from_result(res, encoding="utf-8")
            if handler is not None:
                handler(res)

    def _lost(self) -> None:
        """The session is over: close the connection, so that the pool replaces it and the
        store knows it broke (``lost``)."""
        self.lost = True
        self._conn.close()

    def _leave_pipeline(self) -> None:
        if self._piped:
            self._pg.exit_pipeline_mode()
            self._piped = False

    def commit(self) -> None:
        """Send the queued writes and COMMIT in one trip; return once COMMIT returned."""
        if self._begin is not None:
            return  # nothing was sent: no transaction to end
        if not self._alive:
            # Only writes so far: send them first, so that a connection found broken (the
            # database restarted) is found before COMMIT was sent, and the op runs again.
            self._sync()
        self.committing = True
        self._open()  # again, when the cursor ran last
        self._pg.send_query_params(b"COMMIT", None)
        self._handlers.append(_committed)
        self._sync()
        self._leave_pipeline()

    def abort(self) -> None:
        """Roll back whatever was sent; never raises (a broken connection is dropped by the
        pool)."""
        pg = self._pg
        try:
            if self._piped:
                if self._handlers:
                    self._handlers = []
                    pg.pipeline_sync()
                    _flush(pg)
                    while True:
                        res = _next(pg, self._poller)
                        if res is not None and res.status == pq.ExecStatus.PIPELINE_SYNC:
                            break
                        if pg.status != pq.ConnStatus.OK:
                            return
                self._leave_pipeline()
            if pg.transaction_status in _BUSY:
                pg.exec_(b"ROLLBACK")
        except (psycopg.Error, OSError):
            # Left in an unknown state: closed, so the pool replaces it.
            self._lost()

    @property
    def cursor(self) -> psycopg.Cursor[Any]:
        """A psycopg cursor inside this transaction, for the statements that are not prepared
        here and for the cluster's own (postgres_cluster.py): what is queued is sent first."""
        self._open()
        self._sync()
        self._leave_pipeline()
        return self._conn.cursor()

    def _all(self, sql: str, params: tuple[Any, ...] | Mapping[str, Any] = ()) -> list[Any]:
        return self.cursor.execute(sql, params).fetchall()

    def _fetch(self, name: bytes, params: Sequence[bytes | None]) -> pq.abc.PGresult:
        out: list[pq.abc.PGresult] = []
        self._send(name, params, out.append)
        self._sync()
        return out[0]

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        promises = self._promises
        if id in promises:
            return promises[id]
        key = [_text(id)]
        self._send(P_GET, key, self._got_promise(id))
        if id not in self._tasks:
            self._send(T_BESIDE, key, self._got_beside(id))
        self._sync()
        return promises[id]

    def _got_promise(self, id: str) -> Handler:
        promises = self._promises

        def got_promise(res: pq.abc.PGresult) -> None:
            promises[id] = _promise_at(res, 0) if res.ntuples else None

        return got_promise

    def _got_beside(self, id: str) -> Handler:
        def got_beside(res: pq.abc.PGresult) -> None:
            v = res.get_value
            task: TaskRow | None = None
            callbacks: dict[str, bool] = {}
            listeners: list[str] = []
            for i in range(res.ntuples):
                kind = v(i, 0)
                if kind == b"0":
                    task = _task_at(res, i, 1, id)
                elif kind == b"1":
                    callbacks[_s(v(i, 8))] = v(i, 7) == b"t"
                else:
                    listeners.append(_s(v(i, 8)))
            self._tasks[id] = task
            # Only a promise this transaction holds keeps its callbacks and listeners still.
            if self._promises.get(id) is not None:
                self._callbacks[id] = callbacks
                self._listeners[id] = listeners

        return got_beside

    def _got_task(self, id: str) -> Handler:
        tasks = self._tasks

        def got_task(res: pq.abc.PGresult) -> None:
            tasks[id] = _task_at(res, 0) if res.ntuples else None

        return got_task

    def insert_promise(self, promise: Promise) -> None:
        self._send(P_INSERT, _params(rows.promise_params(promise, _tags_json)))
        self._promises[promise.id] = promise

    def update_promise(self, promise: Promise) -> None:
        """Write ``state``, ``value`` and ``settledAt``, the fields that change (tx.py)."""
        v = promise.value
        params = (promise.state, rows.json_text(v.headers), v.data, promise.settledAt, promise.id)
        self._send(P_UPDATE, _params(params))
        held = self._promises.get(promise.id)
        if held is not None:
            self._promises[promise.id] = replace(
                held, state=promise.state, value=v, settledAt=promise.settledAt
            )
        else:
            self._promises.pop(promise.id, None)

    def search_promises(
        self,
        state: PromiseState | None,
        tags: Mapping[str, str],
        limit: int,
        cursor: str | None,
        max_size: int | None = None,
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
        if max_size is None:
            return [_promise(r) for r in self._all(sql, params)]
        return self._sized(sql, params, _promise, max_size, promise_size)

    def branch_promises(self, branch: str) -> list[Promise]:
        res = self._fetch(P_BRANCH, [_text(branch)])
        return [_promise_at(res, i) for i in range(res.ntuples)]

    def due_promises(self, time: int) -> list[Promise]:
        due = [_promise(r) for r in self._all(_P_DUE, (time,))]
        for p in due:
            self._promises[p.id] = p  # locked (SKIP LOCKED took only free rows)
        return due

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        if id not in self._tasks:
            self._send(T_GET, [_text(id)], self._got_task(id))
            self._sync()
        return self._tasks[id]

    def put_task(self, task: TaskRow) -> None:
        self._send(T_PUT, _params(rows.task_params(task)))
        self._tasks[task.id] = task

    def due_tasks(self, time: int) -> list[TaskRow]:
        owners = [id for (id,) in self._all(_T_DUE_OWNERS, (time,))]
        due = [_task(r) for r in self._all(_T_DUE, (time, owners))]
        for t in due:
            self._tasks[t.id] = t
        return due

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        self._send(C_ADD, [_text(awaited), _text(awaiter), b"t" if ready else b"f"])
        known = self._callbacks.get(awaited)
        if known is not None:
            known[awaiter] = known.get(awaiter, False) or ready

    def callbacks_on(self, awaited: str) -> list[Callback]:
        known = self._callbacks.get(awaited)
        if known is None:
            res = self._fetch(C_ON, [_text(awaited)])
            v = res.get_value
            known = {}
            listeners: list[str] = []
            for i in range(res.ntuples):
                name = _s(v(i, 1))
                if v(i, 0) == b"0":
                    known[name] = v(i, 2) == b"t"
                else:
                    listeners.append(name)
            if self._promises.get(awaited) is not None:
                self._callbacks[awaited] = known
                self._listeners[awaited] = listeners
        return [Callback(awaited, w, r) for w, r in sorted(known.items())]

    def mark_ready(self, awaited: str) -> None:
        self._send(C_MARK, [_text(awaited)])
        known = self._callbacks.get(awaited)
        if known is not None:
            for awaiter in known:
                known[awaiter] = True

    def count_ready(self, awaiter: str) -> int:
        res = self._fetch(C_COUNT_READY, [_text(awaiter)])
        return int(res.get_value(0, 0) or 0)

    def delete_ready(self, awaiter: str) -> None:
        self._send(C_DELETE_READY, [_text(awaiter)])
        for known in self._callbacks.values():
            if known.get(awaiter):
                del known[awaiter]

    def delete_callbacks_of(self, awaiter: str) -> None:
        self._send(C_DELETE_OF, [_text(awaiter)])
        for known in self._callbacks.values():
            known.pop(awaiter, None)

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        self._send(C_DELETE_ONE, [_text(awaited), _text(awaiter)])
        known = self._callbacks.get(awaited)
        if known is not None:
            known.pop(awaiter, None)

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        self._send(L_ADD, [_text(promise_id), _text(address)])
        known = self._listeners.get(promise_id)
        if known is not None and address not in known:
            known.append(address)

    def take_listeners(self, promise_id: str) -> list[str]:
        known = self._listeners.pop(promise_id, None)
        if known is None:
            res = self._fetch(L_TAKE, [_text(promise_id)])
            known = [_s(res.get_value(i, 0)) for i in range(res.ntuples)]
        elif known:
            self._send(L_DELETE, [_text(promise_id)])
        # RETURNING gives no order guarantee: sort here (code points = UTF-8 byte order).
        return sorted(known)

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        self._send(X_PUT, _params((task_id, version, address, *_route(address))))

    def put_unblock(self, promise_id: str, address: str) -> None:
        self._send(U_PUT, _params((promise_id, address, *_route(address))))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = sorted(
            (Execute(t, v, a) for t, v, a in self._all(_X_CLAIM, (limit,))),
            key=lambda x: x.task_id,
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
        res = self._fetch(S_GET, [_text(id)])
        return _schedule_at(res, 0) if res.ntuples else None

    def put_schedule(self, schedule: Schedule) -> None:
        self._send(S_PUT, _params(rows.schedule_params(schedule, _tags_json)))

    def delete_schedule(self, id: str) -> bool:
        return (self._fetch(S_DELETE, [_text(id)]).command_tuples or 0) > 0

    def search_schedules(
        self,
        tags: Mapping[str, str],
        limit: int,
        cursor: str | None,
        max_size: int | None = None,
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
        if max_size is None:
            return [_schedule(r) for r in self._all(sql, params)]
        return self._sized(sql, params, _schedule, max_size, schedule_size)

    def _sized(
        self,
        sql: str,
        params: dict[str, Any],
        make: Callable[[Any], T],
        max_size: int,
        size: Callable[[T], int],
    ) -> list[T]:
        """The rows of a search through a server-side cursor, fetched a few at a time (as
        many as the budget left seems to hold, judging by the rows so far), so that rows past
        the size budget never leave the database."""
        self._open()
        self._sync()
        self._leave_pipeline()
        limit = int(params["limit"])
        out: list[T] = []
        total = 0
        with self._conn.cursor(name="sustain_search") as cur:
            cur.execute(sql, params)
            want = _FIRST_FETCH
            while len(out) < limit:
                fetched = cur.fetchmany(min(want, limit - len(out)))
                if not fetched:
                    break
                for row in fetched:
                    item = make(row)
                    out.append(item)
                    total += size(item)
                    if total > max_size:
                        return out
                mean = max(total // len(out), 1)
                want = max(1, min(_MAX_FETCH, (max_size - total) // mean + 1))
        return out

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
        cur = self.cursor
        for table in _RESET_TABLES:
            cur.execute(f"DELETE FROM {table}")
        self._promises.clear()
        self._tasks.clear()
        self._callbacks.clear()
        self._listeners.clear()

    def next_deadline(self) -> int | None:
        row = self.cursor.execute(_NEXT_DEADLINE).fetchone()
        if row is None:
            return None
        return min((int(at) for at in row if at is not None), default=None)

    def has_outbox(self) -> bool:
        row = self.cursor.execute(_HAS_OUTBOX).fetchone()
        return bool(row is not None and row[0])


def _ends_session(res: pq.abc.PGresult) -> bool:
    """A FATAL (or PANIC) error: the backend ends the session after sending it."""
    if res.status in _OK:
        return False
    severity = res.error_field(pq.DiagnosticField.SEVERITY_NONLOCALIZED)
    return severity in (b"FATAL", b"PANIC")


def _committed(res: pq.abc.PGresult) -> None:
    # A transaction that failed answers COMMIT with ROLLBACK (no error): never acknowledge it.
    if res.command_status != b"COMMIT":
        raise e.OperationalError(f"the transaction was rolled back ({res.command_status!r})")
