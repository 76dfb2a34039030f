"""The facade's own event loop, in a daemon thread, and the sync/async bridge.

User workflows, the worker and the network all run on this loop, whatever the caller uses.
``bridge(coro)`` runs a coroutine there and gives its result the way the caller wants it:
called from plain sync code it blocks and returns the value; called from a thread whose event
loop is running (async code) it returns an awaitable instead, so ``await`` works and the
caller's loop is never blocked.

``submit`` is ``asyncio.run_coroutine_threadsafe`` without its wake-up per call: a burst of
submissions from another thread (``Sustain.run`` in a loop) is queued and wakes the event
loop once (one self-pipe write instead of one per call: it was a third of the caller
thread's CPU in W2).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._queue: collections.deque[tuple[Coroutine[Any, Any, Any], Any]] = collections.deque()
        self._scheduled = False  # a _drain is queued on the loop and has not started yet
        self._thread = threading.Thread(target=self._main, name="sustain-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        if self.loop.is_closed():
            raise RuntimeError("Event loop is closed")
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        # deque.append and the flag are atomic under the GIL; _drain clears the flag before
        # it empties the queue, so an item appended after its last look schedules a new one
        # (two racing submitters may both schedule: the second drain finds nothing).
        self._queue.append((coro, future))
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon_threadsafe(self._drain)
        return future

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        loop = self.loop
        while queue:
            coro, future = queue.popleft()
            try:
                task = loop.create_task(coro)
            except BaseException as exc:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
                continue
            task.add_done_callback(_Copy(future))
            future.add_done_callback(_Cancel(loop, task))

    def on_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.on_loop():
            self._thread.join(timeout=10)


class _Copy:
    """Copies a finished task's outcome to the caller's concurrent future."""

    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future

    def __call__(self, task: asyncio.Task[Any]) -> None:
        future = self.future
        if future.cancelled():
            return
        if task.cancelled():
            future.cancel()
            return
        if not future.set_running_or_notify_cancel():
            return
        exc = task.exception()
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(task.result())


class _Cancel:
    """Cancelling the caller's future cancels the task (``asyncio.wait_for`` timing out in
    ``deliver`` does that), as with ``run_coroutine_threadsafe``."""

    __slots__ = ("loop", "task")

    def __init__(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[Any]) -> None:
        self.loop = loop
        self.task = task

    def __call__(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled() and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.task.cancel)


def caller_is_async() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def deliver(future: concurrent.futures.Future[T], timeout: float | None = None) -> Any:
    """The future's value (sync caller) or an awaitable of it (async caller)."""
    if caller_is_async():
        return asyncio.wait_for(asyncio.wrap_future(future), timeout)
    return future.result(timeout)
