"""Handles on durable executions, and how they learn that a promise settled.

``Subscriptions`` keeps an asyncio future per watcher of each awaited id.  ``watch(id)``
registers a listener at this process's unicast address (``promise.register_listener``); the
answer settles the futures at once when the promise is already done, else an ``unblock``
message does.  Unblocks are best effort, so after a stream reconnect, and every ``refresh``
seconds, every id still awaited is registered again (the answer carries its current state).

An execution this process runs itself (``Sustain.run`` won its task) needs no listener while
it runs: ``watch(id, listen=False)`` waits for the worker to report the settled record
(``settled``), and the worker calls ``listen(id)`` if its run ends with the promise still
pending (suspended, released, lease lost), so whoever finishes it later is heard.  That saves
a listener write and an ``unblock`` message per workflow that finishes in one pass.

``Handle`` is what ``Sustain.run/rpc/get`` return: ``id``, ``done()``, ``result()`` (sync:
it blocks) and ``await handle`` / ``await handle.aresult()`` (async).  ``result()`` called on
a running event loop (async code, a Jupyter notebook) raises ``AsyncUsageError`` rather than
block the loop, which would also block the answer it waits for, or hand back a coroutine
that a sync caller would drop.  A wait that runs out raises ``ExecutionTimeoutError`` (a
``TimeoutError``) saying what the execution waits on (waiting.py); the handle stays usable.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Generator
from typing import Any

from sustain.errors import AsyncUsageError, ExecutionTimeoutError, ServerError, SustainError
from sustain.runtime.clock import Clock
from sustain.sdk import codec
from sustain.sdk.loop import caller_is_async
from sustain.sdk.network import Network, NetworkStopped

EXPLAIN_WAIT = 10.0  # seconds a timed-out result() spends finding out what the run waits on

log = logging.getLogger(__name__)


class Subscriptions:
    def __init__(self, network: Network, address: str) -> None:
        self.network = network
        self.address = address
        # one future per watcher (not one shared future behind asyncio.shield, which costs a
        # future, two callbacks and an extra loop iteration per result): a cancelled watcher
        # cancels only its own
        self._waiting: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}
        self._checks: set[asyncio.Task[None]] = set()

    async def watch(self, id: str, listen: bool = True) -> dict[str, Any]:
        """The settled promise record of ``id``, once it settles.  ``listen=False``: this
        process runs the execution and reports its end (``settled`` or ``listen``)."""
        first = id not in self._waiting
        future = self.expect(id)
        if listen and first:
            try:
                await self._register(id)
            except BaseException:
                future.cancel()  # never awaited now: nothing may set an error on it
                raise
        return await future

    def expect(self, id: str) -> asyncio.Future[dict[str, Any]]:
        """``watch(id, listen=False)`` without a coroutine: the future of the record."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        waiters = self._waiting.get(id)
        if waiters is not None:
            waiters.append(future)
        else:
            self._waiting[id] = [future]
        return future

    def listen(self, id: str) -> None:
        """Register the listener of ``id`` if it is awaited here (a local run of it ended
        with the promise still pending)."""
        if id in self._waiting:
            self._register_soon(id)

    def _register_soon(self, id: str) -> None:
        check = asyncio.ensure_future(self._register(id))
        self._checks.add(check)
        check.add_done_callback(self._checks.discard)

    async def _register(self, id: str) -> None:
        data = {"awaited": id, "address": self.address}
        try:
            answer = await self.network.request("promise.register_listener", data)
        except NetworkStopped:
            return
        if answer.status == 200:
            self.settled(answer.data["promise"])
            return
        for future in self._waiting.pop(id, ()):
            if not future.done():
                future.set_exception(ServerError(answer.status, str(answer.data), "get"))

    def settled(self, promise: dict[str, Any]) -> None:
        if promise.get("state", "pending") == "pending":
            return
        waiters = self._waiting.pop(promise["id"], None)
        if waiters is not None:
            for future in waiters:
                if not future.done():
                    future.set_result(promise)

    def fail(self, id: str, exc: BaseException) -> None:
        """End every wait on ``id`` with ``exc`` (the execution itself is left as it is)."""
        for future in self._waiting.pop(id, ()):
            if not future.done():
                future.set_exception(exc)

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("kind") == "unblock":
            promise = (message.get("data") or {}).get("promise")
            if isinstance(promise, dict):
                self.settled(promise)

    def refresh(self) -> None:
        """Register every awaited id again (after a reconnect messages may have been lost)."""
        for id in list(self._waiting):
            self._register_soon(id)

    async def refresh_every(self, seconds: float, clock: Clock) -> None:
        while True:
            await clock.background_sleep(seconds)  # housekeeping: never stops a virtual clock
            self.refresh()

    def cancel_all(self) -> None:
        for waiters in self._waiting.values():
            for future in waiters:
                future.cancel()
        self._waiting.clear()


Explain = Callable[[str], "concurrent.futures.Future[list[str]]"]


class Handle:
    """A durable execution: ``id``, ``done()``, ``result()``, ``await handle``."""

    def __init__(self, id: str, record: concurrent.futures.Future[dict[str, Any]],
                 returns: Any = None, explain: Explain | None = None) -> None:  # fmt: skip
        self.id = id
        self._record = record
        self._returns = returns
        self._explain = explain  # submits waiting.explain(id) to the Sustain's loop

    def done(self) -> bool:
        return self._record.done()

    def _value(self, record: dict[str, Any]) -> Any:
        ok, value = codec.outcome(record)
        if not ok:
            raise value
        return codec.convert(value, self._returns)

    def result(self, timeout: float | None = None) -> Any:
        """The value (or the raised error), waiting at most ``timeout`` seconds; in async
        code ``await handle`` (or ``await handle.aresult(timeout)``) instead."""
        if caller_is_async():
            raise AsyncUsageError("handle.result()", "await handle")
        try:
            record = self._record.result(timeout)
        except concurrent.futures.TimeoutError:
            raise self._timed_out(timeout, self._sync_explain()) from None
        return self._value(record)

    # ASYNC109: the timeout mirrors result(timeout), and its error explains the wait
    async def aresult(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """``result()`` for async code: the value, waiting at most ``timeout`` seconds."""
        wrapped = asyncio.wrap_future(self._record)
        # asyncio.wait, not wait_for: a timeout must not cancel the execution's future,
        # which the handle (and every other await of it) still needs
        done, _ = await asyncio.wait({wrapped}, timeout=timeout)
        if not done:
            raise self._timed_out(timeout, await self._async_explain())
        return self._value(wrapped.result())

    def __await__(self) -> Generator[Any, None, Any]:
        return self.aresult().__await__()

    def _timed_out(self, timeout: float | None, waiting: list[str]) -> ExecutionTimeoutError:
        return ExecutionTimeoutError(self.id, timeout, waiting)

    def _sync_explain(self) -> list[str]:
        if self._explain is None:
            return []
        try:
            return self._explain(self.id).result(EXPLAIN_WAIT)
        except Exception as exc:  # the explanation is a courtesy: the timeout still stands
            return [f"unknown ({exc!r})"]

    async def _async_explain(self) -> list[str]:
        if self._explain is None:
            return []
        try:
            explained = asyncio.wrap_future(self._explain(self.id))
            return await asyncio.wait_for(explained, EXPLAIN_WAIT)
        except Exception as exc:  # the explanation is a courtesy: the timeout still stands
            return [f"unknown ({exc!r})"]

    # Set by the ``Sustain`` that made the handle: its ``cancel(id, detached=...)``.
    canceler: Callable[..., Any] | None = None

    def cancel(self, *, detached: bool = False) -> Any:
        """Cancel this execution and its pending descendants (``Sustain.cancel``): a
        ``CancelReport``, awaitable in async code; ``result()`` then raises
        ``CanceledError``."""
        if self.canceler is None:
            raise SustainError(f"the handle on {self.id!r} was not made by a Sustain")
        return self.canceler(self.id, detached=detached)

    # Set by the ``Sustain`` that made the handle: its ``status(id)``.
    reporter: Callable[[str], Any] | None = None

    def status(self) -> Any:
        """What this execution is doing (``Sustain.status``): an ``ExecutionStatus`` with its
        state, why it is paused, and the attempts and last error of its pending steps;
        awaitable in async code."""
        if self.reporter is None:
            raise SustainError(f"the handle on {self.id!r} was not made by a Sustain")
        return self.reporter(self.id)

    def __repr__(self) -> str:
        return f"Handle({self.id!r}, done={self.done()})"
