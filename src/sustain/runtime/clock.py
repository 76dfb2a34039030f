"""The server's "now": wall-clock milliseconds that never go backwards within the process.

Protocol time is wall time (deadlines are absolute epoch ms written by clients), so a
monotonic-only clock would not do; but a wall clock stepped back by NTP must not make a
settled promise look pending again.  ``now()`` therefore answers the larger of the wall clock
and the last answer (PROTOCOL.md §1.5, §9).
"""

from __future__ import annotations

import time


class Clock:
    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        t = time.time_ns() // 1_000_000
        if t < self._last:
            return self._last
        self._last = t
        return t
