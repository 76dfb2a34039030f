"""``Incarnation``: one simulated process of a test: a ``Sustain`` in embedded mode over a
store the test keeps, its event loop, and the driver of its virtual clock.

A test environment has one; a crash test has two per scenario over one store: the one that
dies (every in-memory thing of the SDK lost: handles, replay caches, leases held) and the
fresh one that recovers.  The store outlives both: a ``MemoryStore`` keeps its data when a
network closes it, and the new process's start releases every task the dead one held (the
same takeover a file lock allows in embedded mode, sdk/recovery.py), so recovery is
immediate and never waits for a lease.

Leases are ten years long here: a simulated month passes in a few jumps of the clock, and a
lease of seconds would expire in the first jump while its heartbeat sleeps (it is the
takeover at start, not lease expiry, that recovers a crash).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from sustain.sdk.client import Sustain
from sustain.sdk.handles import Handle
from sustain.sdk.local import LocalNetwork
from sustain.testing.clock import VirtualClock
from sustain.testing.driver import TimeDriver

T = TypeVar("T")

LEASE = timedelta(days=3650)
LOOP_WAIT_S = 120.0  # a driver call that takes longer than this is a hung test, not a slow one


@dataclass(frozen=True)
class Registration:
    """One ``register`` call, made again on every incarnation."""

    fn: Callable[..., Any]
    options: dict[str, Any]  # name, version, retry


class Incarnation:
    def __init__(
        self, network: LocalNetwork, clock: VirtualClock, registrations: list[Registration],
        group: str,
    ) -> None:  # fmt: skip
        network.clock = clock  # one clock for the store's timers and the SDK
        self.network = network
        self.sustain = Sustain(network=network, group=group, ttl=LEASE, clock=clock)
        for r in registrations:
            self.sustain.register(r.fn, **r.options)
        self.driver = TimeDriver(clock, network)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = LOOP_WAIT_S) -> T:
        """Run ``coro`` on the Sustain's event loop and wait for its result."""
        # The facade's loop thread (sdk/loop.py): the driver must run where the SDK does.
        return self.sustain._core.loop().submit(coro).result(timeout)

    def make_call(self, make: Callable[[], Handle]) -> Handle:
        """Make a call (``Sustain.run``/``rpc``) with time held still until its promise is
        in the store: its deadline is computed from ``now()`` on this thread, and a jump
        meanwhile (auto-skip on another execution's timer) would make it born late."""
        self.call(self.driver.hold())
        try:
            handle = make()
            self.sustain.flush()
        finally:
            self.call(self.driver.release())
        return handle

    def observe(self, observer: Callable[[str, str], None]) -> None:
        """Call ``observer(function name, promise id)`` as each call's body starts."""
        self.sustain._core.env.observe = observer

    def start(self, *, auto_skip: bool) -> None:
        self.sustain.start()
        if auto_skip:
            self.call(_start_auto_skip(self.driver))

    def stop(self, grace: float = 5.0) -> None:
        if self.sustain._core.thread is not None:
            self.call(self.driver.stop_auto_skip())
        self.sustain.stop(grace)


async def _start_auto_skip(driver: TimeDriver) -> None:
    driver.start_auto_skip()
