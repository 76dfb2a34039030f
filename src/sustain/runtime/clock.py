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
"""

from __future__ import annotations

import asyncio
import time


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
