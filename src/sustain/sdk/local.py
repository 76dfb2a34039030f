"""``LocalNetwork``: embedded mode, the whole server minus the sockets, in this process.

Theory of operation: ``start()`` builds the process ``Runtime`` that the server also runs
(sustain/runtime/core.py: store, engine, clock, poll registry, outbox delivery, timer loop)
from a small ``ServerConfig`` and starts its two loops on the running event loop; nothing of
the HTTP server stack is imported.  Nothing is re-implemented here:

* ``request(kind, data)`` is what ``POST /`` does without HTTP: the runtime's ``Applier``
  (runtime/apply.py), the one path every operation takes: prepared on the event loop, run in
  one store transaction (SQLite group commit batches concurrent callers), then the same
  wake-ups of the background loops as the server's.  The request dict goes to the engine as is
  and the answer is ``msgspec.to_builtins`` of the engine's records: no JSON on this path.
* ``listen(group, pid, handler)`` adds an in-process subscriber to the poll registry, in the
  place an SSE stream would take, so executes and unblocks for ``poll://any@group``,
  ``poll://any@group/pid`` and ``poll://uni@group/pid`` are selected by exactly the server's
  uni/any rules.  The outbox loop hands it the encoded message; it is decoded once and
  passed to the handlers on the event loop (``call_soon``, never inside the outbox loop).

Durability: with a file, every acknowledged request is on disk (``synchronous=FULL`` by
default).  A process that reopens the file gets every unfinished task again without doing
anything: outbox entries not yet delivered go out as soon as the loops start, and a task
whose execute was delivered but never acquired is re-sent by the task retry timer (at most
``retry_timeout`` ms after it was last (re)queued; the value in force when that happened).
A task the dead process had acquired does not wait for its lease: the file lock proves its
holder dead, and the ``Sustain`` that starts this network releases every acquired task at
once (sdk/recovery.py).  Register listeners before ``start()`` (or before the first
request) so that the undelivered executes of a previous run find them.

Store trouble: a failed commit (``CommitError``, a SQLite operational error) is retried with
the 1 s doubling backoff like a remote 503; a closed store means the network was stopped
(``NetworkStopped``).  Any other exception is the engine's bug, answered as a 500.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from sustain.protocol.envelope import Request
from sustain.runtime.clock import Clock
from sustain.runtime.config import (
    ObservabilityConfig,
    ServerConfig,
    SqliteConfig,
    StorageConfig,
    TasksConfig,
)
from sustain.runtime.core import Runtime, open_store
from sustain.runtime.poll import PollConnection
from sustain.sdk import network
from sustain.sdk.network import (
    Announce,
    Answer,
    MessageHandler,
    NetworkStopped,
    PollAddresses,
)
from sustain.store.base import Store
from sustain.store.errors import CommitError, StoreClosedError, StoreStatementError

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode


class _Subscriber(PollConnection):
    """An in-process poll connection: delivered messages go straight to the handlers."""

    __slots__ = ("announce", "handlers", "loop")

    def __init__(
        self, group: str, pid: str, loop: asyncio.AbstractEventLoop, announce: Announce | None
    ) -> None:
        super().__init__(group, pid, 0)
        self.loop = loop
        self.handlers: list[MessageHandler] = []
        self.announce = announce

    def announced(self) -> Mapping[str, list[int]] | None:
        # Asked at each delivery, not at subscribe: a function registered after the start
        # is served at once (there is no connection to re-open in process).
        return self.announce() if self.announce is not None else None

    def offer(self, payload: bytes) -> bool:
        if self.closed:
            return False
        try:
            message = _decode(payload)
        except msgspec.DecodeError:  # our own encoder wrote it: cannot happen, never fatal
            log.exception("undecodable message dropped")
            return False
        self.loop.call_soon(network.dispatch, self.handlers, message)
        return True


class LocalNetwork(PollAddresses):
    """The ``Network`` of embedded mode (see the module docstring)."""

    def __init__(
        self,
        path: str = "sustain.db",
        *,
        synchronous: str = "FULL",
        retry_timeout: int = 30000,
        clock: Clock | None = None,
        debug: bool = False,
        store: Store | None = None,
    ) -> None:
        """``path`` is a SQLite file, or ``":memory:"`` for a throwaway in-memory store.

        ``clock`` (a ``Clock`` subclass) replaces wall time for requests and timers, e.g. a
        fake clock in tests; call ``wake_timers()`` after moving it.  ``debug`` enables the
        ``debug.*`` operations.  Nothing is opened before ``start()``.

        ``store``: an open store to use instead of ``path``'s (sustain.testing keeps one
        ``MemoryStore`` across the networks of a simulated crash: a ``MemoryStore`` keeps
        its data when ``stop()`` closes it).
        """
        storage = (
            StorageConfig(type="memory")
            if path == ":memory:"
            else StorageConfig(type="sqlite", sqlite=SqliteConfig(path, synchronous))
        )
        self.config = ServerConfig(
            debug=debug,
            storage=storage,
            tasks=TasksConfig(retry_timeout=retry_timeout),
            observability=ObservabilityConfig(metrics=False),
        )
        # One clock for requests, the timer loop and (through Sustain) the SDK's deadlines.
        self.clock = clock if clock is not None else Clock()
        self._store = store
        self._runtime: Runtime | None = None
        self._subscribers: dict[tuple[str, str], _Subscriber] = {}
        self._pending: list[tuple[str, str, MessageHandler, Announce | None]] = []
        self._reconnect: list[Callable[[], None]] = []
        self._stopped = asyncio.Event()
        self._starting: asyncio.Lock | None = None
        self._corr = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime:
        """The running process runtime (store, engine, loops); only after ``start()``."""
        if self._runtime is None:
            raise RuntimeError("LocalNetwork is not started")
        return self._runtime

    async def start(self) -> None:
        if self._runtime is not None:
            return
        if self._stopped.is_set():
            raise NetworkStopped("the network was stopped")
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._runtime is not None:
                return
            # Opening runs migrations and takes the file lock: keep it off the event loop.
            store = self._store
            if store is None:
                store = await asyncio.to_thread(open_store, self.config)
            runtime = Runtime(self.config, store, clock=self.clock)
            loop = asyncio.get_running_loop()
            for group, pid, handler, functions in self._pending:
                self._subscribe(runtime, loop, group, pid, handler, functions=functions)
            self._pending.clear()
            await runtime.start()
            self._runtime = runtime

    async def stop(self) -> None:
        """Stop the loops and close the store (its queued writes finish first)."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        runtime = self._runtime
        if runtime is None and self._starting is not None:
            async with self._starting:  # a start in progress: let it finish, then undo it
                runtime = self._runtime
        if runtime is not None:
            await runtime.stop()

    def wake_timers(self) -> None:
        """Run the timer pass now (after moving a fake clock forward)."""
        if self._runtime is not None:
            self._runtime.timer.notify(0)

    # -- requests --------------------------------------------------------------------------

    async def request(self, kind: str, data: Mapping[str, Any], durable: bool = True) -> Answer:
        runtime = self._runtime
        if runtime is None:
            await self.start()
            runtime = self.runtime
        payload = data if isinstance(data, dict) else dict(data)
        operation = Request(kind, f"local-{next(self._corr)}", "", None, None, payload)
        applier = runtime.applier
        attempt = 0
        while True:
            if self._stopped.is_set():
                raise NetworkStopped("the network was stopped")
            try:
                outcome = await applier.apply(operation, durable=durable)
            except StoreClosedError:
                raise NetworkStopped("the store is closed") from None
            except (CommitError, StoreStatementError) as exc:
                log.warning("store unavailable for %s, retrying: %s", kind, exc)
                if await network.rest(self._stopped, network.backoff(attempt), self.clock):
                    raise NetworkStopped("the network was stopped") from None
                attempt += 1
                continue
            except Exception as exc:
                log.exception("operation %s failed", kind)
                return Answer(500, f"Internal error: {exc}")
            break
        data_out = outcome.data
        if not isinstance(data_out, str):
            data_out = msgspec.to_builtins(data_out)
        return Answer(outcome.status, data_out)

    # -- messages --------------------------------------------------------------------------

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        if self._stopped.is_set():
            raise NetworkStopped("the network was stopped")
        if self._runtime is None:
            self._pending.append((group, pid, on_message, functions))
        else:
            loop = asyncio.get_running_loop()
            self._subscribe(self._runtime, loop, group, pid, on_message, functions=functions)

    async def unlisten(self, group: str, pid: str) -> None:
        subscriber = self._subscribers.pop((group, pid), None)
        if subscriber is not None and self._runtime is not None:
            self._runtime.registry.unregister(subscriber)

    def listening(self, group: str, pid: str) -> bool:
        """True once ``(group, pid)`` receives messages (after ``listen`` and ``start``)."""
        return self._runtime is not None and (group, pid) in self._subscribers

    def _subscribe(
        self,
        runtime: Runtime,
        loop: asyncio.AbstractEventLoop,
        group: str,
        pid: str,
        handler: MessageHandler,
        *,
        functions: Announce | None = None,
    ) -> None:
        subscriber = self._subscribers.get((group, pid))
        if subscriber is None:
            subscriber = _Subscriber(group, pid, loop, functions)
            self._subscribers[(group, pid)] = subscriber
            runtime.registry.add(subscriber)
        subscriber.handlers.append(handler)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Kept for the protocol: an in-process subscriber never disconnects."""
        self._reconnect.append(callback)
