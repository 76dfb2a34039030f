"""``PostgresTx``: the row-level ``Tx`` of sustain.store.tx as SQL on one PostgreSQL connection.

The transaction is the store's (store.py takes a connection, runs the op on a
``PostgresTx`` and calls ``commit`` or ``abort``); columns, JSON text and the copies of the
reserved tags are exactly SQLite's (sql/rows.py); ids compare as bytes (``COLLATE "C"`` in
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
  fail with a unique violation, and the store reruns the operation (store.py).
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
  runs it again, which then finds the row (store.py).
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
  replica claims through cluster.py instead, which marks entries and routes poll
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
sent, and the store answers the request 400 (store.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
from msgspec.structs import replace
from psycopg import pq

from sustain.protocol.records import Promise, Schedule
from sustain.store.postgres import statements as q
from sustain.store.postgres.pipeline import Handler, Pipeline
from sustain.store.postgres.values import decoded as _s
from sustain.store.postgres.values import params as _params
from sustain.store.postgres.values import promise_at as _promise_at
from sustain.store.postgres.values import route as _route
from sustain.store.postgres.values import schedule_at as _schedule_at
from sustain.store.postgres.values import tags_json as _tags_json
from sustain.store.postgres.values import task_at as _task_at
from sustain.store.postgres.values import text as _text
from sustain.store.sql import rows
from sustain.store.sql import statements as sql
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import schedule as _schedule
from sustain.store.sql.rows import task as _task
from sustain.store.sql.search import Kind
from sustain.store.sql.tx import Params, Row, SqlTx
from sustain.store.tx import Callback, Execute, TaskRow

T = TypeVar("T")
# Rows per FETCH of a size-bounded search: a few first, then as many as the budget left
# holds at the rows' mean size so far (a search of small rows takes few round trips).
_FIRST_FETCH = 8
_MAX_FETCH = 256


def _got(held: dict[str, Any], id: str, read: Callable[[pq.abc.PGresult, int], Any]) -> Handler:
    """The handler of a read by id: the row ``read`` decodes, or None (known missing)."""

    def got(res: pq.abc.PGresult) -> None:
        held[id] = read(res, 0) if res.ntuples else None

    return got


class PostgresTx(SqlTx, Pipeline):
    """The ``Tx`` of one transaction on ``conn`` (a pooled psycopg connection in autocommit
    mode, idle), sent through ``Pipeline``; ``commit`` or ``abort`` ends it."""

    __slots__ = ("_callbacks", "_listeners", "_promises", "_tasks")

    dialect = q.SEARCH
    # A queue's row is read FOR UPDATE before each dispatch (sql/queues.py): replicas
    # dispatching from one queue take turns, so its limits hold across the cluster.
    _lock = " FOR UPDATE"
    _claim = " FOR UPDATE SKIP LOCKED"

    def __init__(self, conn: psycopg.Connection[Any], durable: bool = True) -> None:
        Pipeline.__init__(self, conn, durable)
        # Rows this transaction holds (locked or written), None = known missing.
        self._promises: dict[str, Promise | None] = {}
        self._tasks: dict[str, TaskRow | None] = {}
        # Callbacks on (awaiter -> ready) and listeners of promises this transaction holds,
        # read after the promise's lock and kept up to date with this transaction's writes.
        self._callbacks: dict[str, dict[str, bool]] = {}
        self._listeners: dict[str, list[str]] = {}

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        promises = self._promises
        if id in promises:
            return promises[id]
        key = [_text(id)]
        self._send(q.P_GET, key, _got(self._promises, id, _promise_at))
        if id not in self._tasks:
            self._send(q.T_BESIDE, key, self._got_beside(id))
        self._sync()
        return promises[id]

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

    def insert_promise(self, promise: Promise) -> None:
        self._send(q.P_INSERT, _params(rows.promise_params(promise, _tags_json)))
        self._promises[promise.id] = promise

    def update_promise(self, promise: Promise) -> None:
        """Write ``state``, ``value`` and ``settledAt``, the fields that change (tx.py)."""
        v = promise.value
        params = (promise.state, rows.json_text(v.headers), v.data, promise.settledAt, promise.id)
        self._send(q.P_UPDATE, _params(params))
        held = self._promises.get(promise.id)
        if held is not None:
            self._promises[promise.id] = replace(
                held, state=promise.state, value=v, settledAt=promise.settledAt
            )
        else:
            self._promises.pop(promise.id, None)

    def branch_promises(self, branch: str) -> list[Promise]:
        res = self._fetch(q.P_BRANCH, [_text(branch)])
        return [_promise_at(res, i) for i in range(res.ntuples)]

    def due_promises(self, time: int) -> list[Promise]:
        due = [_promise(r) for r in self._all(q.P_DUE, (time,))]
        for p in due:
            self._promises[p.id] = p  # locked (SKIP LOCKED took only free rows)
        return due

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        if id not in self._tasks:
            self._send(q.T_GET, [_text(id)], _got(self._tasks, id, _task_at))
            self._sync()
        return self._tasks[id]

    def put_task(self, task: TaskRow) -> None:
        self._send(q.T_PUT, _params(rows.task_params(task)))
        self._tasks[task.id] = task

    def due_tasks(self, time: int) -> list[TaskRow]:
        owners = [id for (id,) in self._all(q.T_DUE_OWNERS, (time,))]
        due = [_task(r) for r in self._all(q.T_DUE, (time, owners))]
        for t in due:
            self._tasks[t.id] = t
        return due

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        self._send(q.C_ADD, [_text(awaited), _text(awaiter), b"t" if ready else b"f"])
        known = self._callbacks.get(awaited)
        if known is not None:
            known[awaiter] = known.get(awaiter, False) or ready

    def callbacks_on(self, awaited: str) -> list[Callback]:
        known = self._callbacks.get(awaited)
        if known is None:
            res = self._fetch(q.C_ON, [_text(awaited)])
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
        self._send(q.C_MARK, [_text(awaited)])
        known = self._callbacks.get(awaited)
        if known is not None:
            for awaiter in known:
                known[awaiter] = True

    def count_ready(self, awaiter: str) -> int:
        res = self._fetch(q.C_COUNT_READY, [_text(awaiter)])
        return int(res.get_value(0, 0) or 0)

    def delete_ready(self, awaiter: str) -> None:
        self._send(q.C_DELETE_READY, [_text(awaiter)])
        for known in self._callbacks.values():
            if known.get(awaiter):
                del known[awaiter]

    def delete_callbacks_of(self, awaiter: str) -> None:
        self._send(q.C_DELETE_OF, [_text(awaiter)])
        for known in self._callbacks.values():
            known.pop(awaiter, None)

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        self._send(q.C_DELETE_ONE, [_text(awaited), _text(awaiter)])
        known = self._callbacks.get(awaited)
        if known is not None:
            known.pop(awaiter, None)

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        self._send(q.L_ADD, [_text(promise_id), _text(address)])
        known = self._listeners.get(promise_id)
        if known is not None and address not in known:
            known.append(address)

    def take_listeners(self, promise_id: str) -> list[str]:
        known = self._listeners.pop(promise_id, None)
        if known is None:
            res = self._fetch(q.L_TAKE, [_text(promise_id)])
            known = [_s(res.get_value(i, 0)) for i in range(res.ntuples)]
        elif known:
            self._send(q.L_DELETE, [_text(promise_id)])
        # RETURNING gives no order guarantee: sort here (code points = UTF-8 byte order).
        return sorted(known)

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        self._send(q.X_PUT, _params((task_id, version, address, *_route(address))))

    def put_unblock(self, promise_id: str, address: str) -> None:
        self._send(q.U_PUT, _params((promise_id, address, *_route(address))))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = sorted(
            (Execute(t, v, a) for t, v, a in self._all(q.X_CLAIM, (limit,))),
            key=lambda x: x.task_id,
        )
        pairs = sorted(self._all(q.U_CLAIM, (limit,)))
        if not pairs:
            return executes, []
        ids = sorted({pid for pid, _ in pairs})
        promises = {p.id: p for p in map(_promise, self._all(q.P_BY_IDS, (ids,)))}
        # A pair whose promise is gone (not possible through the engine) is dropped, claimed.
        unblocks = [(promises[pid], addr) for pid, addr in pairs if pid in promises]
        return executes, unblocks

    # -- schedules ------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None:
        res = self._fetch(q.S_GET, [_text(id)])
        return _schedule_at(res, 0) if res.ntuples else None

    def put_schedule(self, schedule: Schedule) -> None:
        self._send(q.S_PUT, _params(rows.schedule_params(schedule, _tags_json)))

    def delete_schedule(self, id: str) -> bool:
        return (self._fetch(q.S_DELETE, [_text(id)]).command_tuples or 0) > 0

    # -- status records -------------------------------------------------------------------
    def get_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        return {str(i): str(r) for i, r in self._all(q.ST_GET, (list(ids),))}

    def put_status(self, id: str, record: str) -> None:
        self.cursor.execute(q.ST_PUT, (id, record))

    # -- the hooks of SqlTx (sql/tx.py) --------------------------------------------------
    def _rows(self, query: str, params: Params = ()) -> Iterable[Row]:
        return self._all(query, params)

    def _write(self, query: str, params: Params) -> None:
        self.cursor.execute(query, params)

    def _sized(self, query: str, params: dict[str, Any], kind: Kind[T], max_size: int) -> list[T]:
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
            cur.execute(query, params)
            want = _FIRST_FETCH
            while len(out) < limit:
                fetched = cur.fetchmany(min(want, limit - len(out)))
                if not fetched:
                    break
                for row in fetched:
                    item = kind.make(row)
                    out.append(item)
                    total += kind.size(item)
                    if total > max_size:
                        return out
                mean = max(total // len(out), 1)
                want = max(1, min(_MAX_FETCH, (max_size - total) // mean + 1))
        return out

    def due_schedules(self, time: int) -> list[Schedule]:
        return [_schedule(r) for r in self._all(q.S_DUE, (time,))]

    # -- whole-store views (the rest: sql/tx.py) ------------------------------------------
    def reset(self) -> None:
        # DELETE, not TRUNCATE: TRUNCATE's exclusive lock would wait for every other
        # replica's open transaction.  Fixed table names, never input.
        cur = self.cursor
        for table in sql.TABLES:
            cur.execute(f"DELETE FROM {table}")
        self._promises.clear()
        self._tasks.clear()
        self._callbacks.clear()
        self._listeners.clear()
