"""Build the server from a ``ServerConfig`` and run it on uvicorn.

``Runtime`` owns every long-lived piece: the store, the engine, the clock, the poll registry,
the outbox and timer loops, metrics and the authenticator.  ``run(config)`` builds it (a store
that cannot open is a start-up error, reported in one line by the CLI), then serves the ASGI
app with uvicorn's ``Server`` API.

On PostgreSQL the runtime also holds the replica's ``Cluster`` (server/cluster.py,
store/postgres_cluster.py): it announces local writes to the other replicas, publishes the
poll streams held here, and claims the outbox entries this replica can deliver; on a single
server ``cluster`` is None and none of it runs.

Shutdown order matters: uvicorn waits for open responses before running the lifespan
shutdown, and an SSE stream never ends on its own, so ``_Server.shutdown`` first closes every
poll stream; then the lifespan stops the loops, gives in-flight pushes the remaining grace
period, (on PostgreSQL) leaves the cluster and closes the store (which finishes its queued
writes first).

Why uvicorn (httptools + uvloop) and not granian: granian 2.8.9's embedded ASGI server was
tried as a drop-in (same app, lifespan in the same loop) and was slower on this 2-core
machine: S1 at 64 clients, 3 interleaved pairs, load ~2-2.5, median 2,641 vs 3,085 ops/s and
0.308 vs 0.273 ms of server CPU per op (task_impl=rust: 2,638 vs 3,382).  Its Rust HTTP
threads compete for the second core with the SQLite writer, and each request still crosses
into Python through the ASGI callables.  What made uvicorn cheaper instead
(docs/decisions.md, "S1 throughput"): one ``send`` per response (``_CoalescingTransport``)
and a collector tuned for a server (``_tune_gc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Iterable, Iterator
from typing import Any, cast

import msgspec
import uvicorn
from prometheus_client import Gauge
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sustain.engine import Engine, EngineConfig, Outcome
from sustain.protocol.limits import Limits
from sustain.server.app import App
from sustain.server.auth import AuthConfig, Authenticator
from sustain.server.clock import Clock
from sustain.server.cluster import Cluster, replica_id
from sustain.server.config import ServerConfig
from sustain.server.delivery import Delivery
from sustain.server.loops import Pause, TimerLoop
from sustain.server.metrics import Metrics
from sustain.server.poll import PollRegistry
from sustain.store.base import Store
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


def open_store(config: ServerConfig) -> Store:
    """The configured store. Raises (e.g. ``StoreLockedError``) when it cannot open."""
    if config.storage.type == "memory":
        return MemoryStore()
    if config.storage.type == "postgres":
        # Imported here: psycopg is loaded only by servers that use PostgreSQL.
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
    from sustain.store.postgres_cluster import PostgresCluster  # noqa: PLC0415

    if not isinstance(store, PostgresStore):
        return None
    replica = replica_id(config)
    # The replica's id as a metric label: sustain_replica_info{replica="..."} 1.
    Gauge(
        "sustain_replica_info", "This server's replica id", ["replica"], registry=metrics.registry
    ).labels(replica).set(1)
    return PostgresCluster(
        store,
        replica,
        replica_timeout=config.cluster.replica_timeout,
        # A claim older than this was taken by a stuck replica: an HTTP push may legitimately
        # take up to request_timeout.
        claim_timeout=config.cluster.replica_timeout + config.transports.http_push.request_timeout,
        clock=clock.now,
    )


def authenticator_for(config: ServerConfig) -> Authenticator | None:
    auth = config.auth
    if auth.publickey is None:
        return None
    return Authenticator(AuthConfig(auth.publickey, iss=auth.iss, aud=auth.aud))


class Runtime:
    """Every long-lived component of one server process."""

    def __init__(
        self,
        config: ServerConfig,
        store: Store,
        authenticator: Authenticator | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.authenticator = authenticator
        self.limits = Limits(**msgspec.structs.asdict(config.limits))
        self.engine = Engine(
            EngineConfig(
                retry_timeout=config.tasks.retry_timeout, debug=config.debug, limits=self.limits
            )
        )
        # A caller-supplied clock (a Clock subclass) lets the embedded SDK run on fake time.
        self.clock = clock if clock is not None else Clock()
        self.metrics = Metrics(enabled=config.observability.metrics)
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
            # (server/loops.py); a replica's messages are claimed by its Cluster.
            claim=self.delivery.claim_in if self.cluster is None else None,
            on_claimed=self.delivery.hand,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def after(self, kind: str, outcome: Outcome) -> None:
        """Tell the background loops what an operation changed (the server's ``POST /`` and
        the embedded network both call this): a write to the outbox rings the outbox loop, a
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
        if self.cluster is not None:
            await self.cluster.start(self.delivery.wake, self.timer.notify)
        self._tasks = [
            asyncio.create_task(self.delivery.run(), name="sustain-outbox"),
            asyncio.create_task(self.timer.run(), name="sustain-timers"),
        ]

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


class _CoalescingTransport:
    """A connection's transport that sends a response's head together with its body.

    uvicorn's httptools protocol writes a response in two calls (the head at
    ``http.response.start``, the body at ``http.response.body``), and on loopback each
    ``send`` costs more CPU than the rest of the HTTP layer: a py-spy profile at 64 clients
    put 31 % of the GIL-held samples on those two writes.  So a write is held back until the
    next one, and the two go out as one ``send`` (one TCP segment) at the moment the second
    is written: the body leaves exactly when it did before, the head with it.  A write with
    no successor in the same event-loop iteration is sent at the end of that iteration, and
    ``close``/``write_eof`` send it first.  No byte on the wire changes; everything but
    writing is the real transport's.
    """

    __slots__ = (
        "_loop",
        "_pending",
        "_scheduled",
        "_transport",
        "get_extra_info",
        "is_closing",
        "pause_reading",
        "resume_reading",
    )

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: bytes | None = None
        self._scheduled = False
        # Called for every request: bound once here rather than found by __getattr__.
        self.get_extra_info = transport.get_extra_info
        self.is_closing = transport.is_closing
        self.pause_reading = transport.pause_reading
        self.resume_reading = transport.resume_reading

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = bytes(data)
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self._flush)
        else:
            self._pending = None
            if not self._transport.is_closing():
                self._transport.write(pending + data)

    def writelines(self, lines: Iterable[bytes]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, None
        if pending is not None and not self._transport.is_closing():
            self._transport.write(pending)

    def get_write_buffer_size(self) -> int:
        queued = 0 if self._pending is None else len(self._pending)
        return self._transport.get_write_buffer_size() + queued

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a ``_CoalescingTransport``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        coalescing = _CoalescingTransport(cast(asyncio.Transport, transport), self.loop)
        super().connection_made(cast(asyncio.Transport, coalescing))


class _Server(uvicorn.Server):
    """uvicorn's server, closing SSE streams first so the graceful shutdown can finish."""

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.runtime.close_streams()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown, which turns a clean
        # stop into a KeyboardInterrupt or a death by signal; a finished shutdown exits 0.
        with super().capture_signals():
            yield
            self._captured_signals.clear()


def uvicorn_config(config: ServerConfig, app: App) -> uvicorn.Config:
    level = "trace" if config.level == "trace" else config.level
    return uvicorn.Config(
        app,
        host=config.server.bind,
        port=config.server.port,
        http=_HttpProtocol,
        loop="auto",
        lifespan="on",
        log_level=level,
        access_log=False,
        timeout_graceful_shutdown=max(1, config.server.shutdown_timeout // 1000),
        server_header=False,
        proxy_headers=False,
    )


def _tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running server.

    A request allocates a few hundred container objects (ASGI scope and messages, a task,
    futures, the decoded request and its records); almost all die by reference counting, yet
    each 700 allocations trigger a young collection and every tenth of those an older one.
    Measured under S1 at 64 clients: ~300 young, ~30 middle and a few full collections per
    10,000 operations, 0.5 s in all (about a fifth of the server's CPU).  Freezing what
    start-up built (modules, the engine, the runtime) keeps it out of every later full
    collection, and a young threshold of 20,000 makes collections ~30x rarer at a similar
    cost each; cyclic garbage still gets collected, only in larger batches.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(20_000, middle, old)


def run(config: ServerConfig) -> None:
    """Serve until SIGINT/SIGTERM. Start-up failures raise before anything listens."""
    store = open_store(config)
    try:
        authenticator = authenticator_for(config)
        runtime = Runtime(config, store, authenticator)
        port = config.observability.metrics_port
        if port:
            try:
                runtime.metrics.serve(config.server.bind, port)
            except OSError as exc:
                # Name the flag: the operator asked for this port, maybe without knowing it.
                raise OSError(
                    f"cannot serve metrics on {config.server.bind}:{port} "
                    f"(--metrics-port {port}): {exc.strerror}"
                ) from None
    except BaseException:
        store.close()
        raise
    _tune_gc()
    try:
        _Server(uvicorn_config(config, App(runtime)), runtime).run()
    finally:
        # Lifespan shutdown normally closed it; this covers a failed start (port in use).
        if not runtime._closed:
            store.close()
