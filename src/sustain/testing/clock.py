"""``VirtualClock``: time that passes only when a test says so.

A ``Clock`` (runtime/clock.py) whose ``now()`` is a number that ``set`` moves forward, and
whose waits end when that number passes their end instead of when the wall clock does.  It
keeps every pending wait in one heap, in the order of their ends, so moving time to ``t``
ends them in order, and ``next_due`` tells the driver (driver.py) where the next wait the
program means (a retry's backoff, a heartbeat) ends.  Housekeeping waits (``call_later``,
``background_sleep``: the timer loop's wake-up, a handle's periodic refresh) end as time
passes them but are never a reason to move it, the distinction trio's ``MockClock`` makes
between the run loop's own deadlines and the user's.

Everything but ``now()`` runs on the event loop of the ``Sustain`` the clock belongs to:
the heap needs no lock.  ``now()`` is also read by the thread that calls ``Sustain.run``
(a call's deadline): one int, read atomically.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sustain.runtime.clock import Clock, Timer


@dataclass(order=True)
class _Wait:
    due: int
    seq: int
    callback: Callable[[], None] = field(compare=False)
    meant: bool = field(compare=False)  # a wait the program means (sleep), not housekeeping
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class VirtualClock(Clock):
    """A ``Clock`` whose time moves only through ``set`` (see the module docstring).  It
    starts at ``start_ms`` (epoch milliseconds), by default the wall clock's now, so dates
    and cron expressions look as they would today."""

    def __init__(self, start_ms: int | None = None) -> None:
        super().__init__()
        self._now = start_ms if start_ms is not None else time.time_ns() // 1_000_000
        self._waits: list[_Wait] = []
        self._seq = itertools.count()

    def now(self) -> int:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await self._wait(seconds, meant=True)

    async def background_sleep(self, seconds: float) -> None:
        await self._wait(seconds, meant=False)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        return self._push(seconds, callback, meant=False)

    async def _wait(self, seconds: float, *, meant: bool) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wait = self._push(seconds, lambda: _wake(future), meant=meant)
        try:
            await future
        finally:
            wait.cancel()  # a cancelled sleeper leaves nothing due behind it

    def _push(self, seconds: float, callback: Callable[[], None], *, meant: bool) -> Timer:
        if seconds <= 0:  # due now: like asyncio.sleep(0), the next turn of the loop
            return asyncio.get_running_loop().call_soon(callback)
        # Rounded up: a wait never ends before its time (the store's deadlines are ms too).
        due = self._now + max(1, math.ceil(seconds * 1000))
        wait = _Wait(due, next(self._seq), callback, meant)
        heapq.heappush(self._waits, wait)
        return wait

    def next_due(self) -> int | None:
        """When the earliest wait the program means ends (housekeeping excluded)."""
        waits = self._waits
        while waits and waits[0].cancelled:
            heapq.heappop(waits)
        return min((w.due for w in waits if w.meant and not w.cancelled), default=None)

    def set(self, ms: int) -> None:
        """Move time forward to ``ms`` (never back) and end every wait due by then, in the
        order of their ends; the sleepers resume on the loop's next turns."""
        self._now = max(self._now, ms)
        waits = self._waits
        while waits and waits[0].due <= self._now:
            wait = heapq.heappop(waits)
            if not wait.cancelled:
                wait.cancelled = True
                wait.callback()
