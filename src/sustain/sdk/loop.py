"""The facade's own event loop, in a daemon thread, and the sync/async bridge.

User workflows, the worker and the network all run on this loop, whatever the caller uses.
``bridge(coro)`` runs a coroutine there and gives its result the way the caller wants it:
called from plain sync code it blocks and returns the value; called from a thread whose event
loop is running (async code) it returns an awaitable instead, so ``await`` works and the
caller's loop is never blocked.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="sustain-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def on_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def close(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if not self.on_loop():
            self._thread.join(timeout=10)


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
