"""Build the server from a ``ServerConfig`` and run it on uvicorn.

``Runtime`` owns every long-lived piece: the store, the engine, the clock, the poll registry,
the outbox and timer loops, metrics and the authenticator.  ``run(config)`` builds it (a store
that cannot open is a start-up error, reported in one line by the CLI), then serves the ASGI
app with uvicorn's ``Server`` API.

Shutdown order matters: uvicorn waits for open responses before running the lifespan
shutdown, and an SSE stream never ends on its own, so ``_Server.shutdown`` first closes every
poll stream; then the lifespan stops the loops, gives in-flight pushes the remaining grace
period and closes the store (which finishes its queued writes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn

from sustain.engine import Engine, EngineConfig
from sustain.server.app import App
from sustain.server.auth import AuthConfig, Authenticator
from sustain.server.clock import Clock
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
    sqlite = config.storage.sqlite
    return SqliteStore(sqlite.path, synchronous=sqlite.synchronous)


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
        self.engine = Engine(
            EngineConfig(retry_timeout=config.tasks.retry_timeout, debug=config.debug)
        )
        # A caller-supplied clock (a Clock subclass) lets the embedded SDK run on fake time.
        self.clock = clock if clock is not None else Clock()
        self.metrics = Metrics(enabled=config.observability.metrics_port != 0)
        poll = config.transports.http_poll
        self.registry = PollRegistry(poll.max_connections, poll.buffer_size)
        self.pause = Pause()
        self.delivery = Delivery(store, self.registry, self.metrics, config, self.pause)
        self.timer = TimerLoop(
            store,
            self.engine,
            self.clock,
            self.pause,
            cap_ms=config.timeouts.poll_interval,
            on_outbox=self.delivery.wake,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self.delivery.run(), name="sustain-outbox"),
            asyncio.create_task(self.timer.run(), name="sustain-timers"),
        ]

    def close_streams(self) -> None:
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
        await asyncio.to_thread(self.store.close)


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
        http="httptools",
        loop="auto",
        lifespan="on",
        log_level=level,
        access_log=False,
        timeout_graceful_shutdown=max(1, config.server.shutdown_timeout // 1000),
        server_header=False,
        proxy_headers=False,
    )


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
                raise OSError(f"cannot serve metrics on port {port}: {exc.strerror}") from None
    except BaseException:
        store.close()
        raise
    server = _Server(uvicorn_config(config, App(runtime)), runtime)
    try:
        server.run()
    finally:
        # Lifespan shutdown normally closed it; this covers a failed start (port in use).
        if not runtime._closed:
            store.close()
