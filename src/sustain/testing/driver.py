"""``TimeDriver``: moves a ``VirtualClock`` forward once the program has nothing else to do.

Theory of operation.  Time may only jump when every execution is blocked on time; jumping
while a step is still running would let a deadline pass that the step was about to move.
``settle`` therefore waits until the ``Sustain``'s event loop is quiet: no callback ready to
run, no sync leaf queued or running on the leaf threads (sdk/leaves.py), and no real timer
about to fire (the SDK holds a finished step's settle for 2 ms, replay.py ``HOLD_S``), for
``QUIET_TURNS`` turns in a row.  A leaf that blocks (``time.sleep``) thus holds the clock
still rather than being skipped, as it would in production.

The next thing due is the earlier of the store's next deadline (``tx.next_deadline()``: a
promise timeout, a durable sleep, a task's retry or lease, a schedule's next run) and the
clock's next meant wait (a retry's backoff).  ``step`` moves the clock there, ends the waits
due and rings the timer loop, which ticks the engine at the new "now" exactly as it would
at that wall time; then the driver settles again.  One deadline at a time, in order: a week
of an hourly schedule is 168 steps, each with its own promise and execution.

``advance(ms)`` steps through every deadline up to now + ms and then sets the clock there;
``auto_skip`` (a task on the loop) steps to the next deadline whenever the loop is quiet.
Both hold one lock, so an ``advance`` during auto-skip is not raced by it.
"""

from __future__ import annotations

import asyncio
import contextlib

from sustain.sdk import leaves
from sustain.sdk.local import LocalNetwork
from sustain.store.tx import Tx
from sustain.testing.clock import VirtualClock

QUIET_TURNS = 3  # turns of the loop with nothing to do before time may jump
NEAR_S = 0.05  # a real timer due within this is work in progress (a held settle)
IDLE_POLL_S = 0.005  # auto-skip's look again when nothing is due (waiting on a human)
MAX_STUCK = 1000  # steps to a deadline that stays due: a bug, reported instead of a spin


class TimeStuckError(RuntimeError):
    """A deadline stayed due after the timer loop ran at it (a store or engine bug)."""


def _next_store_deadline(tx: Tx) -> int | None:
    return tx.next_deadline()


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    # CPython's loop keeps ready callbacks in _ready and timers in _scheduled; another loop
    # implementation without them is judged by the leaf threads alone.
    if getattr(loop, "_ready", None):
        return True
    if leaves.busy(loop):
        return True
    scheduled = getattr(loop, "_scheduled", ())
    soon = loop.time() + NEAR_S
    return any(not h.cancelled() and h.when() <= soon for h in scheduled)


class TimeDriver:
    """Moves ``clock`` for the ``Sustain`` over ``network`` (see the module docstring)."""

    def __init__(self, clock: VirtualClock, network: LocalNetwork) -> None:
        self.clock = clock
        self.network = network
        self._lock = asyncio.Lock()
        self._auto: asyncio.Task[None] | None = None

    async def settle(self) -> None:
        """Return once the loop has been quiet for ``QUIET_TURNS`` turns in a row."""
        loop = asyncio.get_running_loop()
        quiet = 0
        while quiet < QUIET_TURNS:
            await asyncio.sleep(0)
            quiet = 0 if _busy(loop) else quiet + 1

    async def next_due(self) -> int | None:
        store = self.network.runtime.store
        due = await store.run_async(_next_store_deadline, durable=False)
        mine = self.clock.next_due()
        return min((d for d in (due, mine) if d is not None), default=None)

    def step(self, ms: int) -> None:
        self.clock.set(ms)
        self.network.wake_timers()

    async def advance(self, ms: int) -> None:
        """Let ``ms`` of virtual time pass, firing what falls due on the way, in order."""
        async with self._lock:
            target = self.clock.now() + ms
            stuck = 0
            while True:
                await self.settle()
                due = await self.next_due()
                if due is None or due > target:
                    break
                stuck = stuck + 1 if due <= self.clock.now() else 0
                if stuck > MAX_STUCK:
                    raise TimeStuckError(f"deadline {due} stays due at {self.clock.now()}")
                self.step(due)
            self.step(target)
            await self.settle()

    async def hold(self) -> None:
        """Keep time still until ``release`` (a call being made from another thread)."""
        await self._lock.acquire()

    async def release(self) -> None:
        self._lock.release()

    def start_auto_skip(self) -> None:
        if self._auto is None:
            self._auto = asyncio.ensure_future(self._auto_skip())

    def halt(self) -> None:
        """Stop auto-skip at once (on the loop): a crashed process's time stands still."""
        if self._auto is not None:
            self._auto.cancel()

    async def stop_auto_skip(self) -> None:
        task, self._auto = self._auto, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _auto_skip(self) -> None:
        stuck = 0
        while True:
            async with self._lock:
                await self.settle()
                due = await self.next_due()
                if due is not None:
                    stuck = stuck + 1 if due <= self.clock.now() else 0
                    if stuck <= MAX_STUCK:
                        self.step(due)
                        continue
            # Nothing due (a human's promise, an external event), or a deadline that does
            # not go away: look again soon, without holding the loop.
            await asyncio.sleep(IDLE_POLL_S)
