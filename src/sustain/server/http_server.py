"""Serve a ``Runtime`` over HTTP with uvicorn.

The long-lived pieces (store, engine, clock, poll registry, outbox and timer loops, metrics)
are the process runtime's (sustain/runtime/core.py), shared with the embedded SDK.
``run(config)`` builds it (a store that cannot open is a start-up error, reported in one line
by the CLI) and the authenticator of the HTTP requests (server/auth.py), hands each HTTP
handler the parts it uses (``App.serving``), then serves the ASGI app with uvicorn's
``Server`` API.  This module is the only one that imports uvicorn:
nothing the embedded SDK imports leads here.

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

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sustain.runtime.config import ServerConfig
from sustain.runtime.core import Runtime, open_store
from sustain.server.app import App
from sustain.server.auth import AuthConfig, Authenticator

log = logging.getLogger(__name__)


def authenticator_for(config: ServerConfig) -> Authenticator | None:
    auth = config.auth
    if auth.publickey is None:
        return None
    return Authenticator(AuthConfig(auth.publickey, iss=auth.iss, aud=auth.aud))


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
        runtime = Runtime(config, store)
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
        app = App.serving(runtime, authenticator)
        _Server(uvicorn_config(config, app), runtime).run()
    finally:
        # Lifespan shutdown normally closed it; this covers a failed start (port in use).
        if not runtime._closed:
            store.close()
