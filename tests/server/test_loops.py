"""The timer and outbox loops in process (runtime/loops.py, runtime/delivery.py), on a real SQLite
file, engine and poll registry, with a fake clock: a tick that writes the outbox claims it in
its own transaction and hands the messages to the delivery loop, which sends them without a
claim of its own; the delivery loop still claims what requests write, and after its cap.

Waits are bounded only to turn a bug into a failure instead of a hang; nothing asserts a
duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sustain.engine import Engine, EngineConfig
from sustain.runtime.clock import Clock
from sustain.runtime.config import MessagesConfig, ServerConfig
from sustain.runtime.delivery import Claimed, Delivery
from sustain.runtime.loops import Alarm, Pause, TimerLoop
from sustain.runtime.metrics import Metrics
from sustain.runtime.poll import PollConnection, PollRegistry
from sustain.store.sqlite import SqliteStore

START = 1_800_000_000_000
WAIT = 10.0  # seconds: only a bound against hangs


class FakeClock(Clock):
    def __init__(self, start: int) -> None:
        super().__init__()
        self.time = start

    def now(self) -> int:
        return self.time


@dataclass
class Loops:
    store: SqliteStore
    engine: Engine
    clock: FakeClock
    registry: PollRegistry
    delivery: Delivery
    timer: TimerLoop[Claimed]
    wakes: list[None] = field(default_factory=list)  # ticks that asked for a separate claim
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def apply(self, kind: str, data: dict[str, Any]) -> Any:
        """One operation, then the wake-ups the server's ``POST /`` makes (runtime.after)."""
        engine, now = self.engine, self.clock.now()
        outcome = await self.store.run_async(lambda tx: engine.apply(tx, kind, data, now, "t"))
        assert outcome.status in (200, 201), outcome
        if outcome.wake_outbox:
            self.delivery.wake()
        if outcome.deadline is not None:
            self.timer.notify(outcome.deadline)
        return outcome.data

    async def outbox_empty(self) -> bool:
        return not await self.store.run_async(lambda tx: tx.has_outbox())


@pytest.fixture
async def loops(tmp_path: Path) -> AsyncIterator[Loops]:
    yield await _start(tmp_path, MessagesConfig(poll_interval=3_600_000))


async def _start(tmp_path: Path, messages: MessagesConfig) -> Loops:
    config = ServerConfig(messages=messages)
    store = SqliteStore(str(tmp_path / "loops.db"))
    engine = Engine(EngineConfig())
    clock = FakeClock(START)
    registry = PollRegistry(10, 100)
    pause = Pause()
    delivery = Delivery(store, registry, Metrics(enabled=False), config, pause)
    wakes: list[None] = []
    timer: TimerLoop[Claimed] = TimerLoop(
        store,
        engine,
        clock,
        pause,
        cap_ms=3_600_000,
        on_outbox=lambda: wakes.append(None),
        claim=delivery.claim_in,
        on_claimed=delivery.hand,
    )
    tasks = [asyncio.create_task(delivery.run()), asyncio.create_task(timer.run())]
    return Loops(store, engine, clock, registry, delivery, timer, wakes, tasks)


async def _stop(loops: Loops) -> None:
    loops.timer.stop()
    loops.delivery.stop()
    await asyncio.wait_for(asyncio.gather(*loops.tasks), WAIT)
    await loops.delivery.close(0)
    await asyncio.to_thread(loops.store.close)


async def _messages(conn: PollConnection, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        items = await asyncio.wait_for(conn.drain(WAIT), WAIT)
        got.extend(msgspec.json.decode(item) for item in items)
    return got


async def _listened_timers(loops: Loops, count: int, timeout_at: int) -> list[str]:
    ids = [f"p{i}" for i in range(count)]
    for id in ids:
        # Only promises with a target time out in a tick (the others lazily, when touched);
        # nobody listens to the target, so its execute is dropped.
        tags = {"resonate:target": "poll://any@nobody"}
        await loops.apply("promise.create", {"id": id, "timeoutAt": timeout_at, "tags": tags})
        await loops.apply("promise.register_listener", {"awaited": id, "address": "poll://uni@g/l"})
    return ids


async def test_a_tick_claims_what_it_wrote_and_hands_it_over(loops: Loops) -> None:
    try:
        conn = loops.registry.register("g", "l")
        assert conn is not None
        ids = await _listened_timers(loops, 3, START + 1000)

        loops.clock.time = START + 1000
        loops.timer.notify(0)
        got = await _messages(conn, 3)

        assert sorted(m["data"]["promise"]["id"] for m in got) == ids
        assert {m["data"]["promise"]["state"] for m in got} == {"rejected_timedout"}
        # The tick never asked the delivery loop to claim (whose cap is an hour): the unblocks
        # went out because the tick claimed them in its own transaction and handed them over.
        assert loops.wakes == []
        assert await loops.outbox_empty()
    finally:
        await _stop(loops)


async def test_a_full_claim_in_a_tick_leaves_the_rest_to_the_delivery_loop(
    tmp_path: Path,
) -> None:
    loops = await _start(tmp_path, MessagesConfig(poll_interval=3_600_000, batch_size=2))
    try:
        conn = loops.registry.register("g", "l")
        assert conn is not None
        ids = await _listened_timers(loops, 5, START + 1000)

        loops.clock.time = START + 1000
        loops.timer.notify(0)
        # The tick claims a full batch of 2, so more may wait: the delivery loop claims the
        # other 3 at once rather than after its cap (an hour).
        got = await _messages(conn, 5)

        assert sorted(m["data"]["promise"]["id"] for m in got) == ids
        assert loops.wakes == []
        assert await loops.outbox_empty()
    finally:
        await _stop(loops)


async def test_requests_still_wake_the_delivery_loop(loops: Loops) -> None:
    try:
        conn = loops.registry.register("g", "w")
        assert conn is not None
        await loops.apply(
            "promise.create",
            {
                "id": "job",
                "timeoutAt": START + 3_600_000,
                "tags": {"resonate:target": "poll://any@g"},
            },
        )
        (message,) = await _messages(conn, 1)
        assert message["kind"] == "execute"
        assert message["data"]["task"]["id"] == "job"
    finally:
        await _stop(loops)


async def test_the_delivery_loop_claims_after_its_cap_without_a_wake(tmp_path: Path) -> None:
    loops = await _start(tmp_path, MessagesConfig(poll_interval=20))
    try:
        conn = loops.registry.register("g", "w")
        assert conn is not None
        engine, now = loops.engine, loops.clock.now()
        data = {
            "id": "quiet",
            "timeoutAt": now + 3_600_000,
            "tags": {"resonate:target": "poll://any@g"},
        }
        # Written without the wake-up a request makes: only the cap can find it.
        await loops.store.run_async(lambda tx: engine.apply(tx, "promise.create", data, now, "t"))
        (message,) = await _messages(conn, 1)
        assert message["data"]["task"]["id"] == "quiet"
    finally:
        await _stop(loops)


async def test_alarm_sleep_tells_a_ring_from_the_time_running_out() -> None:
    alarm = Alarm()
    assert await alarm.sleep(0.001) is False
    alarm.ring()  # rung while awake: the next sleep ends at once
    assert await alarm.sleep(WAIT) is True
    sleeper = asyncio.create_task(alarm.sleep(WAIT))
    await asyncio.sleep(0)
    alarm.ring()
    assert await asyncio.wait_for(sleeper, WAIT) is True
