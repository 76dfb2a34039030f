"""The virtual clock itself: waits end in the order of their ends when time moves, a
cancelled wait leaves nothing due, and housekeeping waits never count as "next due"."""

from __future__ import annotations

import asyncio

from sustain.testing import VirtualClock


async def test_waits_end_in_order_and_only_when_due() -> None:
    clock = VirtualClock(start_ms=1_000)
    ended: list[str] = []

    async def wait(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        ended.append(f"{name}@{clock.now()}")

    tasks = [asyncio.ensure_future(wait(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await asyncio.sleep(0)
    assert clock.next_due() == 2_000
    clock.set(3_500)
    await asyncio.sleep(0)
    assert ended == ["a@3500", "b@3500"]
    assert clock.next_due() == 4_000
    clock.set(10_000)
    await asyncio.gather(*tasks)
    assert ended == ["a@3500", "b@3500", "c@10000"]
    assert clock.next_due() is None


async def test_a_cancelled_wait_and_housekeeping_are_never_next_due() -> None:
    clock = VirtualClock(start_ms=0)
    sleeper = asyncio.ensure_future(clock.sleep(5))
    housekeeping = asyncio.ensure_future(clock.background_sleep(1))
    await asyncio.sleep(0)
    assert clock.next_due() == 5_000  # the 1 s housekeeping wait does not count
    sleeper.cancel()
    await asyncio.sleep(0)
    assert clock.next_due() is None
    clock.set(1_000)  # ...but it ends once time passes it
    await asyncio.wait_for(housekeeping, 1)
    fired: list[int] = []
    timer = clock.call_later(1, lambda: fired.append(clock.now()))
    timer.cancel()
    clock.set(5_000)
    assert fired == []


def test_time_never_goes_back() -> None:
    clock = VirtualClock(start_ms=5_000)
    clock.set(1_000)
    assert clock.now() == 5_000
