"""``Clock``: the one source of "now" and of waiting, for the runtime and the SDK alike.

Protocol time is wall time (deadlines are absolute epoch ms written by clients), so a
monotonic-only clock would not do; but a wall clock stepped back by NTP must not make a
settled promise look pending again.  ``now()`` therefore answers the larger of the wall clock
and the last answer (PROTOCOL.md §1.5, §9).

The seam: the server's requests and timer loop, the embedded runtime and the SDK (the
deadlines a call is created with, ``ctx.now()``, the retry policy's "now" and its backoff
sleeps, heartbeats) all read one ``Clock``, given as ``Sustain(clock=...)`` or
``LocalNetwork(clock=...)``.  A test replaces it with a subclass: ``now()`` answers its
virtual time, ``sleep`` may return as soon as that time has been advanced.

Two kinds of waiting: ``sleep`` is a wait the program means (a retry's backoff, a lease's
heartbeat), ``call_later`` and ``background_sleep`` are housekeeping (the timer loop's
wake-up, a handle's periodic re-registration, a probe).  The wall clock treats them alike;
a virtual clock that jumps to "the next thing due" (sustain.testing) stops at every
``sleep`` but never for housekeeping, which only ends when time passes it anyway: otherwise
a 60 s refresh would cut a simulated month into 43,200 steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    """What ``Clock.call_later`` returns (an ``asyncio.TimerHandle`` on the wall clock)."""

    def cancel(self) -> None: ...


class Clock:
    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        """Milliseconds since the epoch, never less than the previous answer."""
        t = time.time_ns() // 1_000_000
        if t < self._last:
            return self._last
        self._last = t
        return t

    async def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of this clock's time pass (a retry's backoff, a heartbeat's
        pause)."""
        await asyncio.sleep(seconds)

    async def background_sleep(self, seconds: float) -> None:
        """A housekeeping pause (see the module docstring): a virtual clock never moves
        time forward for it."""
        await asyncio.sleep(seconds)

    def call_later(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` on the running event loop once ``seconds`` of this clock's time
        have passed; housekeeping, like ``background_sleep``."""
        return asyncio.get_running_loop().call_later(seconds, callback)
