"""The background timer loop (PROTOCOL.md §5.1, §5.3) and the sleep primitives it shares.

Theory of operation: instead of ticking once a second, the loop runs ``engine.tick`` at wall
time ``now`` and, in the same transaction, asks the store for the next deadline
(``tx.next_deadline()``: the earliest promise timeout, task timeout or schedule run).  It then
sleeps until that deadline, capped by ``timeouts.poll_interval`` (a safety net, not a
polling period).  Requests that create or move a timer report it (``Outcome.deadline``) through
``notify``; a deadline earlier than the planned wake-up rings the alarm and the loop re-plans.
Deadlines notified while a tick is running are folded into the next plan, so a timer created
concurrently with a tick is never missed.

A tick that writes the outbox (a timed-out promise resumes its awaiters: executes and
unblocks) also claims the outbox in its own transaction when ``claim`` is given (a single
server; a cluster replica claims through its ``Cluster`` instead) and hands the claimed
messages to the delivery loop (``on_claimed``) once the tick is committed and synced.  That
saves a second transaction and a wake-up of the outbox loop before the resumes go out, on the
path that sets a timer's lateness; the tick's sync is what makes the messages safe to send.

``debug.start`` pauses the loop (``Pause``) and ``debug.stop`` resumes it.  A failing tick is
logged and retried after the cap: the loop never dies while the server runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import Generic, TypeVar

from sustain.engine import Engine, Outcome
from sustain.runtime.clock import Clock
from sustain.store.base import Store
from sustain.store.errors import UNAVAILABLE
from sustain.store.tx import Tx

log = logging.getLogger(__name__)

C = TypeVar("C")  # what a tick's outbox claim returns (the delivery loop's ``Claimed``)

_FAR = 2**62


class Alarm:
    """Sleep for a while unless rung earlier; a ring while awake is remembered.  ``sleep``
    answers True when it ended on a ring, False when the time ran out.  The time is
    ``clock``'s when one is given (the timer loop's: a test's virtual clock decides when a
    deadline is reached), else the event loop's."""

    __slots__ = ("_clock", "_rung", "_waiter")

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self._rung = False
        self._waiter: asyncio.Future[None] | None = None

    def ring(self) -> None:
        self._rung = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def sleep(self, seconds: float) -> bool:
        if not self._rung:
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            wake = partial(_resolve, waiter)
            clock = self._clock
            handle = (
                loop.call_later(seconds, wake) if clock is None else clock.call_later(seconds, wake)
            )
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiter = None
        rung, self._rung = self._rung, False
        return rung


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Pause:
    """The debug pause shared by the background loops (``debug.start`` / ``debug.stop``)."""

    def __init__(self) -> None:
        self._running = asyncio.Event()
        self._running.set()
        self._listeners: list[Alarm] = []

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def attach(self, alarm: Alarm) -> None:
        """Ring ``alarm`` on every pause/resume so its sleeper notices at once."""
        self._listeners.append(alarm)

    def pause(self) -> None:
        self._running.clear()
        self._ring()

    def resume(self) -> None:
        self._running.set()
        self._ring()

    def _ring(self) -> None:
        for alarm in self._listeners:
            alarm.ring()

    async def wait_running(self) -> None:
        await self._running.wait()


class TimerLoop(Generic[C]):
    """Tick the engine at each deadline (promise/task timeouts, lease expiry, schedules).

    ``on_outbox`` is called after a tick that wrote the outbox; with ``claim`` and
    ``on_claimed`` the tick claims the outbox itself and ``on_claimed`` gets the messages
    instead (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        engine: Engine,
        clock: Clock,
        pause: Pause,
        *,
        cap_ms: int,
        on_outbox: Callable[[], None],
        on_scheduled: Callable[[int], None] | None = None,
        claim: Callable[[Tx], C] | None = None,
        on_claimed: Callable[[C], None] | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._clock = clock
        self._pause = pause
        self._cap = cap_ms
        self._on_outbox = on_outbox
        self._on_scheduled = on_scheduled
        self._claim = claim if on_claimed is not None else None
        self._on_claimed = on_claimed
        self._alarm = Alarm(clock)
        pause.attach(self._alarm)
        self._planned = 0
        self._stuck = 0
        self._stopping = False

    def notify(self, deadline: int) -> None:
        """A timer at ``deadline`` (ms) exists now: wake earlier than planned if needed."""
        if deadline < self._planned:
            self._planned = deadline
            self._alarm.ring()

    def stop(self) -> None:
        self._stopping = True
        self._alarm.ring()
        self._pause.resume()

    def _tick(self, tx: Tx, *, now: int) -> tuple[Outcome, int | None, C | None]:
        outcome = self._engine.tick(tx, now)
        claimed = None
        if outcome.wake_outbox and self._claim is not None:
            claimed = self._claim(tx)
        return outcome, tx.next_deadline(), claimed

    async def run(self) -> None:
        while not self._stopping:
            if self._pause.paused:
                await self._pause.wait_running()
                continue
            # From here on, notifications lower the plan that this tick will produce.
            self._planned = _FAR
            now = self._clock.now()
            claimed: C | None = None
            try:
                outcome, deadline, claimed = await self._store.run_async(
                    partial(self._tick, now=now)
                )
            except UNAVAILABLE as exc:
                log.warning(
                    "timer tick failed, store unavailable: %s", exc, extra={"action": "tick"}
                )
                outcome, deadline = None, now + self._cap
            except Exception:
                log.exception("timer tick failed", extra={"action": "tick"})
                outcome, deadline = None, now + self._cap
            if claimed is not None and self._on_claimed is not None:
                try:
                    self._on_claimed(claimed)
                except Exception:  # a delivery bug loses these messages, never the loop
                    log.exception("handing over claimed messages failed", extra={"action": "tick"})
            elif outcome is not None and outcome.wake_outbox:
                self._on_outbox()
            if outcome is not None and outcome.scheduled and self._on_scheduled is not None:
                self._on_scheduled(outcome.scheduled)
            self._plan(now, deadline)
            await self._sleep()

    def _plan(self, now: int, deadline: int | None) -> None:
        target = now + self._cap
        if deadline is not None:
            if deadline <= now:
                # Something stayed due after a tick (should not happen): back off so a
                # persistent one cannot turn the loop into a busy spin.
                self._stuck += 1
                deadline = now + min(self._cap, 1 << min(self._stuck, 10))
            else:
                self._stuck = 0
            target = min(target, deadline)
        self._planned = min(self._planned, target)

    async def _sleep(self) -> None:
        while not self._stopping and not self._pause.paused:
            delay = self._planned - self._clock.now()
            if delay <= 0:
                return
            await self._alarm.sleep(delay / 1000)
