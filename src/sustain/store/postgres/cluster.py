"""``PostgresCluster``: N ``sustain serve`` replicas on one PostgreSQL database.

Any replica answers any request: the engine's state is in the database, and every operation
is one transaction with row locks (store.py, tx.py).  The timer pass already
claims due promises, tasks and schedules with ``FOR UPDATE SKIP LOCKED``, so each timeout,
retry, lease expiry and schedule tick is processed by exactly one replica.  What a cluster
adds is here (schema: schema/postgres/0002_cluster.sql; the server-side seam:
sustain/runtime/cluster.py).

Replicas.  Each replica has an id (``server.replica_id``, default ``hostname-pid``) and a row
in ``replicas`` whose ``heartbeat_at`` it refreshes every third of ``cluster.replica_timeout``.
A replica whose heartbeat is older than the timeout is dead.  Times are the database's
``now()``, so the replicas' own clocks never have to agree.  A replica starting with an id
that already has rows (a restart with a fixed ``--replica-id``) first releases them.

Wake-ups (``LISTEN``/``NOTIFY``).  A write rings its own replica's loops (``Runtime.after``)
and ``announce``\\ s it: right after the commit, one ``pg_notify`` on ``sustain_outbox``
(payload: the writer's id) or on ``sustain_timer`` (payload ``deadline:id``).  Announces are
coalesced: at most one notifying transaction is in flight, and a timer is announced only
when it is earlier than every deadline already announced and not yet passed (most timers
are later ones, so most writes announce nothing).  A replica alone in the cluster (as of
its last heartbeat) announces nothing; a replica that joins notifies the others at once,
and any notification from another replica ends that.  Each replica holds one dedicated
connection, in a thread, that ``LISTEN``\\ s on both channels and rings its outbox loop or
moves its timer loop's wake-up (its own notifications are ignored).  When that connection
breaks it reconnects and rings both loops, since notifications were lost meanwhile; the
loops' ``poll_interval`` caps remain the safety net.

Poll routing.  The registry's ``connected``/``disconnected`` maintain ``poll_connections``
(replica, group, id): one row per distinct pair a replica holds (several streams of one
pair count once), written by one background task that applies the difference between what
the replica holds and what it last wrote, then rings the local outbox loop (messages may
have waited for the new stream).  Outbox entries carry their poll routing key, decoded from
the address when written (tx.py).  A replica claims an entry when

* it is not a poll address (HTTP push and the rest: any replica); or
* it holds a stream with the entry's group and id (``uni`` and ``any``); or
* it is ``any@g``, the replica holds some member of ``g``, and no live replica holds the
  entry's id (``any@g/id`` prefers the replica holding ``id``); or
* nobody live holds a matching stream and the entry has waited ``replica_timeout``: then
  it is claimed to be dropped, as a single server drops a message nobody listens for
  (executes come back through the task retry timer).  The wait lets the workers of a dead
  replica reconnect elsewhere first.

Claims and redelivery.  A claim marks entries (``claimed_by``, ``claimed_at``) instead of
deleting them, with ``FOR UPDATE SKIP LOCKED`` so replicas claiming at once take disjoint
entries.  Once an entry was handed to its poll stream (or its HTTP push finished, or it was
dropped), the replica acknowledges it and the next claim deletes it, in the same
transaction.  An entry claimed by a replica that is no longer live, or claimed longer ago
than ``replica_timeout + push request_timeout`` (a stuck replica), can be claimed again: a
replica killed between claim and send loses nothing, its messages go out at most
``replica_timeout`` later through another replica.  Delivery is therefore at least once per
entry (a replica killed after sending, before deleting, sends again); both kinds of message
are idempotent for the SDK (an execute's acquire is fenced by its version, an unblock
carries the settled promise).  An execute rewritten with a newer version is a new,
unclaimed entry: the acknowledgement names the version it sent, so it cannot delete it.

Shutdown (SIGTERM).  ``drain`` stops claiming; the server closes its SSE streams (workers
reconnect, to another replica behind a load balancer); ``stop`` deletes the acknowledged
entries, the replica's ``poll_connections`` and its ``replicas`` row, which makes whatever
it still had claimed immediately claimable by the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import psycopg

from sustain.store.postgres.tx import PostgresTx
from sustain.store.sql.rows import promise as _promise
from sustain.store.tx import Execute, Tx, pinned

if TYPE_CHECKING:
    from sustain.protocol.records import Promise
    from sustain.store.postgres.store import PostgresStore

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "sustain_outbox"
TIMER_CHANNEL = "sustain_timer"
_FAR = 2**62

_MS = "* interval '1 millisecond'"
_LIVE = f"r.heartbeat_at > now() - %(dead)s {_MS}"

# Which entries (alias x) this replica (%(me)s) may claim: see the module docstring.
_CLAIMABLE = (
    "(x.claimed_by IS NULL"
    f" OR x.claimed_at < now() - %(stuck)s {_MS}"
    " OR NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = x.claimed_by AND " + _LIVE + "))"
    " AND (x.poll_group IS NULL"
    " OR EXISTS (SELECT 1 FROM poll_connections c WHERE c.replica = %(me)s"
    " AND c.poll_group = x.poll_group AND c.poll_id = x.poll_id)"
    " OR (x.poll_cast = 'any'"
    " AND EXISTS (SELECT 1 FROM poll_connections c WHERE c.replica = %(me)s"
    " AND c.poll_group = x.poll_group)"
    " AND (x.poll_id IS NULL OR NOT EXISTS (SELECT 1 FROM poll_connections c"
    " JOIN replicas r ON r.id = c.replica"
    " WHERE c.poll_group = x.poll_group AND c.poll_id = x.poll_id AND " + _LIVE + ")))"
    f" OR (x.queued_at < now() - %(dead)s {_MS}"
    " AND NOT EXISTS (SELECT 1 FROM poll_connections c JOIN replicas r ON r.id = c.replica"
    " WHERE c.poll_group = x.poll_group AND (x.poll_cast = 'any' OR c.poll_id = x.poll_id)"
    " AND " + _LIVE + ")))"
)
_X_CLAIM = (
    "UPDATE outgoing_execute AS t SET claimed_by = %(me)s, claimed_at = now()"
    " FROM (SELECT x.task_id FROM outgoing_execute x WHERE " + _CLAIMABLE + ""
    " ORDER BY x.task_id LIMIT %(limit)s FOR UPDATE OF x SKIP LOCKED) AS pick"
    " WHERE t.task_id = pick.task_id RETURNING t.task_id, t.version, t.address"
)
_U_CLAIM = (
    "UPDATE outgoing_unblock AS t SET claimed_by = %(me)s, claimed_at = now()"
    " FROM (SELECT x.promise_id, x.address FROM outgoing_unblock x WHERE " + _CLAIMABLE + ""
    " ORDER BY x.promise_id, x.address LIMIT %(limit)s FOR UPDATE OF x SKIP LOCKED) AS pick"
    " WHERE t.promise_id = pick.promise_id AND t.address = pick.address"
    " RETURNING t.promise_id, t.address"
)
_X_ACK = (
    "DELETE FROM outgoing_execute x USING unnest(%s::text[], %s::bigint[]) AS a(task_id, version)"
    " WHERE x.task_id = a.task_id AND x.version = a.version AND x.claimed_by = %s"
)
_U_ACK = (
    "DELETE FROM outgoing_unblock x USING unnest(%s::text[], %s::text[]) AS a(promise_id, address)"
    " WHERE x.promise_id = a.promise_id AND x.address = a.address AND x.claimed_by = %s"
)
_P_BY_IDS = (
    "SELECT id, state, param_headers, param_data, value_headers, value_data, tags,"
    " timeout_at, created_at, settled_at FROM promises WHERE id = ANY(%s)"
)
_JOIN = (
    "INSERT INTO replicas (id) VALUES (%s)"
    " ON CONFLICT (id) DO UPDATE SET started_at = now(), heartbeat_at = now()"
)
_BEAT = "UPDATE replicas SET heartbeat_at = now() WHERE id = %s"
_OTHERS = "SELECT count(*) FROM replicas r WHERE r.id <> %(me)s AND " + _LIVE
# Rows of replicas long dead (heartbeat older than 10 timeouts): housekeeping only, the
# queries already ignore dead replicas.
_FORGET = f"DELETE FROM replicas WHERE heartbeat_at < now() - 10 * %s {_MS}"
_FORGET_POLLS = (
    "DELETE FROM poll_connections c"
    " WHERE NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = c.replica)"
)
_RELEASE = " SET claimed_by = NULL, claimed_at = NULL WHERE claimed_by = %s"
_RELEASE_X = "UPDATE outgoing_execute" + _RELEASE
_RELEASE_U = "UPDATE outgoing_unblock" + _RELEASE
_LEAVE_POLLS = "DELETE FROM poll_connections WHERE replica = %s"
_LEAVE = "DELETE FROM replicas WHERE id = %s"
_POLL_ADD = (
    "INSERT INTO poll_connections (replica, poll_group, poll_id)"
    " SELECT %s, g, i FROM unnest(%s::text[], %s::text[]) AS a(g, i) ON CONFLICT DO NOTHING"
)
_POLL_REMOVE = (
    "DELETE FROM poll_connections c USING unnest(%s::text[], %s::text[]) AS a(g, i)"
    " WHERE c.replica = %s AND c.poll_group = a.g AND c.poll_id = a.i"
)

Claimed = tuple[list[Execute], list[tuple["Promise", str]]]
Pair = tuple[str, str]


def _cursor(tx: Tx) -> psycopg.Cursor[Any]:
    return cast(PostgresTx, tx).cursor


class PostgresCluster:
    """This replica's part in the cluster: heartbeat, routing table, claims, wake-ups."""

    def __init__(
        self,
        store: PostgresStore,
        replica_id: str,
        *,
        replica_timeout: int,
        claim_timeout: int,
        clock: Callable[[], int],
    ) -> None:
        self.replica_id = replica_id
        self._store = store
        self._dead = replica_timeout
        self._stuck = max(claim_timeout, replica_timeout)
        self._clock = clock
        self._params = {"me": replica_id, "dead": replica_timeout, "stuck": self._stuck}
        # Acknowledged entries, deleted by the next claim (event-loop thread only).
        self._sent_x: list[tuple[str, int]] = []
        self._sent_u: list[Pair] = []
        # Poll streams held (counted per pair) and the pairs last written to the database.
        self._held: Counter[Pair] = Counter()
        self._written: set[Pair] = set()
        self._polls_dirty = asyncio.Event()
        # Pending announcements.
        self._notify_outbox = False
        self._notify_deadline: int | None = None
        self._announced = _FAR
        self._notify_ready = asyncio.Event()
        self._draining = False
        self._stopping = False
        # No other live replica (as of the last heartbeat, or until one announces itself):
        # announcements are skipped, a single replica pays no NOTIFY.
        self._alone = False
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: threading.Thread | None = None
        self._listen_conn: psycopg.Connection[Any] | None = None
        self._wake_outbox: Callable[[], None] = lambda: None
        self._wake_timer: Callable[[int], None] = lambda deadline: None

    # -- lifecycle ------------------------------------------------------------------------
    async def start(
        self, wake_outbox: Callable[[], None], wake_timer: Callable[[int], None]
    ) -> None:
        self._wake_outbox = wake_outbox
        self._wake_timer = wake_timer
        await self._store.run_async(self._join)
        loop = asyncio.get_running_loop()
        self._listener = threading.Thread(
            target=self._listen, args=(loop,), name="sustain-pg-listen", daemon=True
        )
        self._listener.start()
        self._tasks = [
            asyncio.create_task(self._heartbeat(), name="sustain-heartbeat"),
            asyncio.create_task(self._sync_polls(), name="sustain-poll-sync"),
            asyncio.create_task(self._notifier(), name="sustain-notify"),
        ]
        log.info("replica %s joined the cluster", self.replica_id)

    def _join(self, tx: Tx) -> None:
        cur = _cursor(tx)
        me = self.replica_id
        # A restart under the same id: what the previous process held is stale.
        cur.execute(_RELEASE_X, (me,))
        cur.execute(_RELEASE_U, (me,))
        cur.execute(_LEAVE_POLLS, (me,))
        cur.execute(_JOIN, (me,))
        self._alone = cur.execute(_OTHERS, self._params).fetchone() == (0,)
        # Tell the replicas already running that they are not alone any more.
        cur.execute("SELECT pg_notify(%s, %s)", (OUTBOX_CHANNEL, me))

    def drain(self) -> None:
        self._draining = True

    async def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        try:
            await self._store.run_async(partial(self._leave, self._take_sent()))
        except Exception:
            log.exception("leaving the cluster failed (the others notice by the heartbeat)")
        conn = self._listen_conn
        if conn is not None:
            # Interrupts the listener's wait for notifications.
            with contextlib.suppress(psycopg.Error):
                conn.cancel_safe(timeout=2)
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
        log.info("replica %s left the cluster", self.replica_id)

    def _leave(self, sent: tuple[list[tuple[str, int]], list[Pair]], tx: Tx) -> None:
        cur = _cursor(tx)
        me = self.replica_id
        self._delete_sent(cur, sent)
        cur.execute(_RELEASE_X, (me,))
        cur.execute(_RELEASE_U, (me,))
        cur.execute(_LEAVE_POLLS, (me,))
        cur.execute(_LEAVE, (me,))

    # -- heartbeat ------------------------------------------------------------------------
    async def _heartbeat(self) -> None:
        period = self._dead / 3000
        while True:
            await asyncio.sleep(period)
            try:
                rejoined = await self._store.run_async(self._beat)
            except Exception as exc:
                log.warning("heartbeat failed: %s", exc)
                continue
            if rejoined:
                # Our row was gone (we were silent past the timeout, e.g. the database was
                # unreachable, and another replica forgot us): publish our streams again.
                log.warning("replica %s was considered dead; rejoined", self.replica_id)
                self._written = set()
                self._polls_dirty.set()

    def _beat(self, tx: Tx) -> bool:
        cur = _cursor(tx)
        rejoined = cur.execute(_BEAT, (self.replica_id,)).rowcount == 0
        if rejoined:
            cur.execute(_JOIN, (self.replica_id,))
        cur.execute(_FORGET, (self._dead,))
        cur.execute(_FORGET_POLLS)
        self._alone = cur.execute(_OTHERS, self._params).fetchone() == (0,)
        return rejoined

    # -- poll connections -----------------------------------------------------------------
    def connected(self, group: str, id: str) -> None:
        pair = (group, id)
        self._held[pair] += 1
        if self._held[pair] == 1:
            self._polls_dirty.set()

    def disconnected(self, group: str, id: str) -> None:
        pair = (group, id)
        count = self._held[pair] - 1
        if count <= 0:
            del self._held[pair]
            self._polls_dirty.set()
        else:
            self._held[pair] = count

    async def _sync_polls(self) -> None:
        while True:
            await self._polls_dirty.wait()
            self._polls_dirty.clear()
            held = set(self._held)
            add = sorted(held - self._written)
            remove = sorted(self._written - held)
            if not add and not remove:
                continue
            try:
                await self._store.run_async(partial(self._write_polls, add, remove))
            except Exception as exc:
                log.warning("cannot publish poll connections (retrying): %s", exc)
                await asyncio.sleep(0.5)
                self._polls_dirty.set()
                continue
            self._written = held
            if add:
                self._wake_outbox()  # messages may have waited for these streams

    def _write_polls(self, add: list[Pair], remove: list[Pair], tx: Tx) -> None:
        cur = _cursor(tx)
        if remove:
            cur.execute(
                _POLL_REMOVE, ([g for g, _ in remove], [i for _, i in remove], self.replica_id)
            )
        if add:
            cur.execute(_POLL_ADD, (self.replica_id, [g for g, _ in add], [i for _, i in add]))

    # -- outbox ---------------------------------------------------------------------------
    def sent_execute(self, task_id: str, version: int) -> None:
        self._sent_x.append((task_id, version))

    def sent_unblock(self, promise_id: str, address: str) -> None:
        self._sent_u.append((promise_id, address))

    def _take_sent(self) -> tuple[list[tuple[str, int]], list[Pair]]:
        sent = (self._sent_x, self._sent_u)
        self._sent_x, self._sent_u = [], []
        return sent

    async def claim(self, limit: int) -> Claimed:
        sent = self._take_sent()
        try:
            return await self._store.run_async(partial(self._claim, sent, limit))
        except BaseException:
            # Nothing committed: acknowledge them with the next claim.
            self._sent_x[:0], self._sent_u[:0] = sent
            raise

    def _delete_sent(
        self, cur: psycopg.Cursor[Any], sent: tuple[list[tuple[str, int]], list[Pair]]
    ) -> None:
        executes, unblocks = sent
        me = self.replica_id
        if executes:
            cur.execute(_X_ACK, ([t for t, _ in executes], [v for _, v in executes], me))
        if unblocks:
            cur.execute(_U_ACK, ([p for p, _ in unblocks], [a for _, a in unblocks], me))

    def _claim(self, sent: tuple[list[tuple[str, int]], list[Pair]], limit: int, tx: Tx) -> Claimed:
        cur = _cursor(tx)
        self._delete_sent(cur, sent)
        if self._draining:
            return [], []
        params = {**self._params, "limit": limit}
        rows = cur.execute(_X_CLAIM, params).fetchall()
        executes: list[Execute] = []
        stale: list[tuple[str, int]] = []
        for task_id, version, address in sorted(rows):
            # As on a single server: an execute whose task is no longer pending is skipped
            # (the worker would get a 409 on acquire); it is deleted right here.
            task = tx.get_task(task_id)
            if task is not None and task.state == "pending":
                executes.append(pinned(tx, Execute(task_id, version, address)))
            else:
                stale.append((task_id, version))
        cur = _cursor(tx)  # again after the Tx's own statements (tx.py, cursor)
        if stale:
            self._delete_sent(cur, (stale, []))
        pairs = sorted(cur.execute(_U_CLAIM, params).fetchall())
        if not pairs:
            return executes, []
        ids = sorted({pid for pid, _ in pairs})
        promises = {p.id: p for p in map(_promise, cur.execute(_P_BY_IDS, (ids,)).fetchall())}
        unblocks = [(promises[pid], addr) for pid, addr in pairs if pid in promises]
        return executes, unblocks

    # -- wake-ups -------------------------------------------------------------------------
    def announce(self, outbox: bool, deadline: int | None) -> None:
        if self._alone:
            return  # a cluster of one: nobody to tell
        if outbox:
            self._notify_outbox = True
            self._notify_ready.set()
        if deadline is not None:
            if self._announced <= self._clock():
                self._announced = _FAR  # every announced timer has passed
            if deadline < self._announced:
                self._announced = deadline
                pending = self._notify_deadline
                self._notify_deadline = deadline if pending is None else min(pending, deadline)
                self._notify_ready.set()

    async def _notifier(self) -> None:
        while True:
            await self._notify_ready.wait()
            self._notify_ready.clear()
            outbox, deadline = self._notify_outbox, self._notify_deadline
            self._notify_outbox, self._notify_deadline = False, None
            if not outbox and deadline is None:
                continue
            try:
                await self._store.run_async(partial(self._notify, outbox, deadline))
            except Exception as exc:
                # The others still find the work at their next poll_interval.
                log.warning("NOTIFY failed: %s", exc)

    def _notify(self, outbox: bool, deadline: int | None, tx: Tx) -> None:
        cur = _cursor(tx)
        if outbox:
            cur.execute("SELECT pg_notify(%s, %s)", (OUTBOX_CHANNEL, self.replica_id))
        if deadline is not None:
            cur.execute(
                "SELECT pg_notify(%s, %s)", (TIMER_CHANNEL, f"{deadline}:{self.replica_id}")
            )

    def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        """The listening connection's thread: reconnects until ``stop``."""
        backoff = 0.1
        while not self._stopping:
            try:
                conn = psycopg.connect(
                    self._store.url, autocommit=True, application_name="sustain-listen"
                )
            except psycopg.Error as exc:
                log.warning("LISTEN connection failed (retrying): %s", exc)
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self._listen_conn = conn
            try:
                conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                conn.execute(f"LISTEN {TIMER_CHANNEL}")
                backoff = 0.1
                # Notifications sent while we were not listening are lost: look now.
                loop.call_soon_threadsafe(self._wake_outbox)
                loop.call_soon_threadsafe(self._wake_timer, 0)
                while not self._stopping:
                    for note in conn.notifies(timeout=1.0):
                        self._dispatch(loop, note.channel, note.payload)
            except (psycopg.Error, RuntimeError) as exc:
                if not self._stopping:
                    log.warning("LISTEN connection lost (reconnecting): %s", exc)
                    time.sleep(backoff)
            finally:
                self._listen_conn = None
                conn.close()

    def _dispatch(self, loop: asyncio.AbstractEventLoop, channel: str, payload: str) -> None:
        if payload != self.replica_id and not payload.endswith(":" + self.replica_id):
            self._alone = False  # another replica exists: announce from now on
        if channel == OUTBOX_CHANNEL:
            if payload != self.replica_id:
                loop.call_soon_threadsafe(self._wake_outbox)
        elif channel == TIMER_CHANNEL:
            at, _, sender = payload.partition(":")
            if sender != self.replica_id and at.isdigit():
                loop.call_soon_threadsafe(self._wake_timer, int(at))
