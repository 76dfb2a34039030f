"""``Runtime``: every long-lived piece of one Sustain process, without HTTP.

The store, the engine, the clock, the poll registry, the outbox delivery and the timer loop,
built from a ``ServerConfig``, and the ``Applier`` (runtime/apply.py) through which every
operation is applied.  The server (sustain/server/http_server.py) serves it over uvicorn,
handing each HTTP handler the parts it uses; the embedded SDK (sustain/sdk/local.py) uses it
in the user's process.  Nothing here imports the HTTP server stack (uvicorn,
httptools), JWT or, unless metrics are served, prometheus-client: that is what keeps
``import sustain`` light for embedded use (tests/release/test_imports.py).

On PostgreSQL the runtime also holds the replica's ``Cluster`` (runtime/cluster.py,
store/postgres/cluster.py): it announces local writes to the other replicas, publishes the
poll streams held here, and claims the outbox entries this replica can deliver; on a single
server or in embedded mode ``cluster`` is None and none of it runs.

Shutdown: ``stop`` closes every poll stream, stops the loops, gives in-flight pushes the
remaining grace period, (on PostgreSQL) leaves the cluster and closes the store (which
finishes its queued writes first).
"""

from __future__ import annotations

import asyncio

import msgspec

from sustain.engine import Engine, EngineConfig, Outcome
from sustain.engine.queue_ops import QueueInfo
from sustain.engine.queue_ops import info as queue_info
from sustain.protocol.envelope import Request
from sustain.protocol.limits import Limits
from sustain.protocol.records import VERSION
from sustain.runtime.apply import Applier
from sustain.runtime.clock import Clock
from sustain.runtime.cluster import Cluster, replica_id
from sustain.runtime.config import ServerConfig
from sustain.runtime.delivery import Delivery
from sustain.runtime.loops import Pause, TimerLoop
from sustain.runtime.metrics import Metrics
from sustain.runtime.poll import PollRegistry
from sustain.store.base import Store
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore
from sustain.store.tx import Tx


def open_store(config: ServerConfig) -> Store:
    """The configured store. Raises (e.g. ``StoreLockedError``) when it cannot open."""
    if config.storage.type == "memory":
        return MemoryStore()
    if config.storage.type == "postgres":
        # Imported here: psycopg (the postgres extra) is loaded only by servers that use it.
        from sustain.store.postgres import PostgresStore  # noqa: PLC0415

        postgres = config.storage.postgres
        assert postgres.url is not None  # config.validate guarantees it
        return PostgresStore(postgres.url, pool_size=postgres.pool_size)
    sqlite = config.storage.sqlite
    return SqliteStore(sqlite.path, synchronous=sqlite.synchronous)


def cluster_for(
    config: ServerConfig, store: Store, clock: Clock, metrics: Metrics
) -> Cluster | None:
    """A ``PostgresCluster`` for a server on PostgreSQL (a replica of a cluster, possibly of
    one), else None."""
    if config.storage.type != "postgres":
        return None
    from sustain.store.postgres import PostgresStore  # noqa: PLC0415
    from sustain.store.postgres.cluster import PostgresCluster  # noqa: PLC0415

    if not isinstance(store, PostgresStore):
        return None
    replica = replica_id(config)
    metrics.replica(replica)
    return PostgresCluster(
        store,
        replica,
        replica_timeout=config.cluster.replica_timeout,
        # A claim older than this was taken by a stuck replica: an HTTP push may legitimately
        # take up to request_timeout.
        claim_timeout=config.cluster.replica_timeout + config.transports.http_push.request_timeout,
        clock=clock.now,
    )


class Runtime:
    """Every long-lived component of one process (server or embedded)."""

    def __init__(self, config: ServerConfig, store: Store, clock: Clock | None = None) -> None:
        self.config = config
        self.store = store
        self.limits: Limits = config.limits
        self.engine = Engine(
            EngineConfig(
                retry_timeout=config.tasks.retry_timeout,
                debug=config.debug,
                limits=self.limits,
                status=config.protocol.status,
            )
        )
        # A caller-supplied clock (a Clock subclass) lets the embedded SDK run on fake time.
        self.clock = clock if clock is not None else Clock()
        self.metrics = Metrics(enabled=config.observability.metrics)
        self.metrics.watch_queues(self._queue_infos)
        poll = config.transports.http_poll
        self.registry = PollRegistry(poll.max_connections, poll.buffer_size)
        self.pause = Pause()
        # None on a single server (SQLite, memory): every cluster hook is skipped.
        self.cluster = cluster_for(config, store, self.clock, self.metrics)
        self.registry.watcher = self.cluster
        self.delivery = Delivery(
            store, self.registry, self.metrics, config, self.pause, cluster=self.cluster
        )
        self.timer = TimerLoop(
            store,
            self.engine,
            self.clock,
            self.pause,
            cap_ms=config.timeouts.poll_interval,
            on_outbox=self.delivery.wake if self.cluster is None else self._outbox_written,
            on_scheduled=self.metrics.schedule_promises,
            # A single server's tick claims what it wrote to the outbox in its own transaction
            # (runtime/loops.py); a replica's messages are claimed by its Cluster.
            claim=self.delivery.claim_in if self.cluster is None else None,
            on_claimed=self.delivery.hand,
        )
        self.applier = Applier(self.engine, store, self.clock, self.after)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def after(self, kind: str, outcome: Outcome) -> None:
        """Tell the background loops what an operation changed (the ``Applier`` calls this
        after every operation): a write to the outbox rings the outbox loop, a
        new timer may move the timer loop's wake-up earlier, and a successful
        ``debug.start`` / ``debug.stop`` pauses / resumes both loops."""
        if outcome.wake_outbox:
            self.delivery.wake()
        if outcome.deadline is not None:
            self.timer.notify(outcome.deadline)
        if self.cluster is not None and (outcome.wake_outbox or outcome.deadline is not None):
            self.cluster.announce(outcome.wake_outbox, outcome.deadline)
        if outcome.status == 200 and kind.startswith("debug."):
            if kind == "debug.start":
                self.pause.pause()
            elif kind == "debug.stop":
                self.pause.resume()

    def _outbox_written(self) -> None:
        """A timer tick queued messages: ring this replica's outbox loop and the others'."""
        self.delivery.wake()
        if self.cluster is not None:
            self.cluster.announce(True, None)

    async def start(self) -> None:
        await self._configure_queues()
        if self.cluster is not None:
            await self.cluster.start(self.delivery.wake, self.timer.notify)
        self._tasks = [
            asyncio.create_task(self.delivery.run(), name="sustain-outbox"),
            asyncio.create_task(self.timer.run(), name="sustain-timers"),
        ]

    async def _queue_infos(self) -> list[QueueInfo]:
        def read(tx: Tx) -> list[QueueInfo]:
            return [queue_info(tx, q) for q in tx.all_queues()]

        return await self.store.run_async(read, durable=False)

    async def _configure_queues(self) -> None:
        """The queues of the configuration (``[queues.NAME]``, checked when it was loaded)
        are created, or given these limits again, at every start."""
        for name, queue in self.config.queues.items():
            data = {"name": name, **msgspec.structs.asdict(queue)}
            request = Request("sustain.queue.create", "config", VERSION, None, None, data)
            outcome = await self.applier.apply(request)
            if outcome.status != 200:
                raise RuntimeError(f"queue {name!r} from the configuration: {outcome.data}")

    def close_streams(self) -> None:
        if self.cluster is not None:
            # Draining a replica: claim nothing more, so the others deliver what is left.
            self.cluster.drain()
        self.registry.close_all()

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.close_streams()
        self.timer.stop()
        self.delivery.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
            for task in self._tasks:
                task.cancel()
        await self.delivery.close(grace=self.config.server.shutdown_timeout / 1000)
        if self.cluster is not None:
            await self.cluster.stop()
        await asyncio.to_thread(self.store.close)
