"""Timers and schedules under a fake clock: a year of ticks in milliseconds.

The engine takes time as an argument, so a test can tick it at any instants it likes.  Each
expected firing below is computed independently with ``datetime`` (not with the engine's
cron), and the store is the real SQLite file store as well as the memory store.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from sustain.engine import Engine, EngineConfig
from sustain.store.base import Store
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore

T0 = int(datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC).timestamp() * 1000)
DAY = 86_400_000
ENGINE = Engine(EngineConfig(retry_timeout=30_000, debug=True))


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(
        str(tmp_path / "t.db"), synchronous="NORMAL"
    )
    yield made
    made.close()


def op(store: Store, kind: str, data: dict[str, Any], now: int) -> tuple[int, Any]:
    outcome = store.run(lambda tx: ENGINE.apply(tx, kind, data, now, "t"))
    return outcome.status, msgspec.to_builtins(outcome.data)


def tick(store: Store, time: int) -> None:
    outcome = store.run(lambda tx: ENGINE.tick(tx, time))
    assert outcome.status == 200


def weekday_nines(start_ms: int, end_ms: int) -> list[int]:
    """Every Monday–Friday 09:00 UTC in (start, end], by plain calendar arithmetic."""
    day = datetime.fromtimestamp(start_ms / 1000, UTC).replace(hour=9, minute=0, second=0)
    found = []
    while (ms := int(day.timestamp() * 1000)) <= end_ms:
        if day.weekday() < 5 and ms > start_ms:
            found.append(ms)
        day += timedelta(days=1)
    return found


def fired(store: Store, now: int) -> list[int]:
    status, data = op(store, "promise.search", {"tags": {"resonate:schedule": "weekday"},
                                                 "limit": 1000}, now)
    assert status == 200
    assert "cursor" not in data
    return sorted(p["createdAt"] for p in data["promises"])


def create_weekday_schedule(store: Store) -> dict[str, Any]:
    status, data = op(store, "schedule.create", {
        "id": "weekday", "cron": "0 9 * * 1-5", "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": DAY, "promiseTags": {"resonate:target": "poll://any@reports"},
    }, T0)
    assert status == 200
    schedule: dict[str, Any] = data["schedule"]
    return schedule


def test_a_year_of_ticks_at_each_deadline_fires_every_weekday_once(store: Store) -> None:
    schedule = create_weekday_schedule(store)
    end = T0 + 365 * DAY
    expected = weekday_nines(T0, end)
    assert schedule["nextRunAt"] == expected[0]
    for at in expected:
        tick(store, at - 1)  # one millisecond early: nothing fires
        tick(store, at)
    assert fired(store, end) == expected
    assert len(expected) == 261  # 2027 has 261 weekdays


def test_ticks_at_random_moments_catch_up_every_missed_occurrence(store: Store) -> None:
    create_weekday_schedule(store)
    rng = random.Random(7)
    now, end = T0, T0 + 365 * DAY
    while now < end:
        now = min(end, now + rng.randrange(1, 9 * DAY))
        tick(store, now)
    assert fired(store, end) == weekday_nines(T0, end)
    status, data = op(store, "schedule.get", {"id": "weekday"}, end)
    assert status == 200
    assert data["schedule"]["lastRunAt"] == weekday_nines(T0, end)[-1]
    assert data["schedule"]["nextRunAt"] == weekday_nines(end, end + 7 * DAY)[0]


def test_schedule_promise_past_its_deadline_is_created_timed_out(store: Store) -> None:
    create_weekday_schedule(store)
    first = weekday_nines(T0, T0 + 7 * DAY)[0]
    tick(store, first + DAY + 5)  # one-day promise timeout already over for the first firing
    status, data = op(store, "promise.get", {"id": f"weekday.{first}"}, first + DAY + 5)
    assert status == 200
    assert data["promise"]["state"] == "rejected_timedout"
    assert data["promise"]["settledAt"] == first + DAY


def test_timers_fire_at_their_deadline_and_not_before(store: Store) -> None:
    rng = random.Random(3)
    deadlines = sorted({T0 + rng.randrange(1, 400 * DAY) for _ in range(80)})
    for n, at in enumerate(deadlines):
        status, _ = op(store, "promise.create", {
            "id": f"timer-{n}", "timeoutAt": at,
            "tags": {"resonate:target": "poll://any@sleepers", "resonate:timer": "true"},
        }, T0)
        assert status == 200
    snap_pending = 0
    for n, at in enumerate(deadlines):
        tick(store, at - 1)
        status, data = op(store, "debug.snap", {}, at - 1)
        pending = {p["id"] for p in data["promises"] if p["state"] == "pending"}
        assert f"timer-{n}" in pending
        snap_pending = len(pending)
        tick(store, at)
        status, data = op(store, "debug.snap", {}, at)
        timer = next(p for p in data["promises"] if p["id"] == f"timer-{n}")
        assert timer["state"] == "resolved"
        assert timer["settledAt"] == at
    assert snap_pending == 1
