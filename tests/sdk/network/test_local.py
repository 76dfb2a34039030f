"""``LocalNetwork`` only: durability across restarts on one file, fake time, stop."""

from __future__ import annotations

from pathlib import Path

import pytest

from sustain.runtime.clock import Clock
from sustain.sdk.local import LocalNetwork
from sustain.sdk.network import NetworkStopped
from tests.servers import unique

from .conftest import HOUR, Inbox, now_ms

DAY = 24 * HOUR


async def create_target(net: LocalNetwork, pid: str, target: str) -> None:
    answer = await net.request(
        "promise.create",
        {"id": pid, "timeoutAt": now_ms() + HOUR, "tags": {"resonate:target": target}},
    )
    assert answer.status == 200, answer


async def test_restart_resends_a_delivered_but_unfinished_execute(tmp_path: Path) -> None:
    """The execute went out, the process stopped before the task ran: the task retry timer
    sends it again to the next process on the file (after ``retry_timeout``)."""
    db = str(tmp_path / "durable.db")
    pid = unique("durable")
    first = LocalNetwork(db, retry_timeout=300)
    inbox = Inbox()
    first.listen("workers", "p1", inbox)
    await first.start()
    await create_target(first, pid, first.anycast("workers"))
    await inbox.execute(pid)
    await first.stop()

    second = LocalNetwork(db, retry_timeout=300)
    again = Inbox()
    second.listen("workers", "p2", again)
    await second.start()
    try:
        message = await again.execute(pid)
        assert message["data"]["task"] == {"id": pid, "version": 0}
        got = await second.request("promise.get", {"id": pid})
        assert got.data["promise"]["state"] == "pending"
    finally:
        await second.stop()


async def test_restart_delivers_queued_executes_at_start(tmp_path: Path) -> None:
    """Executes still in the outbox when the process stopped go out as soon as the next one
    starts (its listeners registered before ``start``); the task retry timer is an hour away,
    so only the outbox can explain the delivery."""
    db = str(tmp_path / "outbox.db")
    pid = unique("queued")
    first = LocalNetwork(db, retry_timeout=HOUR, debug=True)
    await first.start()
    paused = await first.request("debug.start", {})  # hold the outbox loop
    assert paused.status == 200
    await create_target(first, pid, first.anycast("workers"))
    await first.stop()

    second = LocalNetwork(db, retry_timeout=HOUR)
    inbox = Inbox()
    second.listen("workers", "p2", inbox)
    await second.start()
    try:
        await inbox.execute(pid)
    finally:
        await second.stop()


async def test_restart_after_an_expired_lease(tmp_path: Path) -> None:
    """A task acquired by a process that died comes back once its lease lapses."""
    db = str(tmp_path / "lease.db")
    pid = unique("leased")
    first = LocalNetwork(db, retry_timeout=HOUR)
    inbox = Inbox()
    first.listen("workers", "p1", inbox)
    await first.start()
    await create_target(first, pid, first.unicast("workers", "p1"))
    await inbox.execute(pid)
    acquired = await first.request(
        "task.acquire", {"id": pid, "version": 0, "pid": "p1", "ttl": 300}
    )
    assert acquired.status == 200, acquired
    assert acquired.data["task"]["state"] == "acquired"
    await first.stop()

    second = LocalNetwork(db, retry_timeout=HOUR)
    again = Inbox()
    second.listen("workers", "p1", again)
    await second.start()
    try:
        message = await again.execute(pid)
        assert message["data"]["task"] == {"id": pid, "version": 1}
    finally:
        await second.stop()


class FakeClock(Clock):
    def __init__(self, start: int) -> None:
        super().__init__()
        self.time = start

    def now(self) -> int:
        return self.time


async def test_fake_clock_fires_a_three_day_timer() -> None:
    clock = FakeClock(now_ms())
    net = LocalNetwork(":memory:", clock=clock)
    inbox = Inbox()
    net.listen("g", "client", inbox)
    await net.start()
    try:
        pid = unique("sleep")
        created = await net.request(
            "promise.create",
            {
                "id": pid,
                "timeoutAt": clock.time + 3 * DAY,
                "tags": {"resonate:target": net.anycast("nobody"), "resonate:timer": "true"},
            },
        )
        assert created.status == 200
        listener = await net.request(
            "promise.register_listener", {"awaited": pid, "address": net.unicast("g", "client")}
        )
        assert listener.data["promise"]["state"] == "pending"
        clock.time += 3 * DAY
        net.wake_timers()
        message = await inbox.unblock(pid)
        assert message["data"]["promise"]["state"] == "resolved"
        assert message["data"]["promise"]["settledAt"] == created.data["promise"]["timeoutAt"]
    finally:
        await net.stop()


async def test_stop_ends_requests_and_listening(tmp_path: Path) -> None:
    net = LocalNetwork(str(tmp_path / "stop.db"))
    answer = await net.request("promise.get", {"id": "nope"})  # starts on first use
    assert answer.status == 404
    await net.stop()
    await net.stop()  # idempotent
    with pytest.raises(NetworkStopped):
        await net.request("promise.get", {"id": "nope"})
    with pytest.raises(NetworkStopped):
        net.listen("g", "p", Inbox())
    # The file is free again: another network opens it.
    reopened = LocalNetwork(str(tmp_path / "stop.db"))
    assert (await reopened.request("promise.get", {"id": "nope"})).status == 404
    await reopened.stop()
