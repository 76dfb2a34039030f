"""Schedules through ``Engine.apply`` (PROTOCOL.md §2.18-2.21, §5.3, §0.1 item 10)."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import Harness, R, T, executes

MIN = 60_000


def sched(
    id: str = "s", cron: str = "* * * * *", timeout: int = 10 * MIN, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id,
        "cron": cron,
        "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": timeout,
        "promiseTags": {"resonate:target": T, "k": "v"},
        **extra,
    }


def test_create_get_delete() -> None:
    h = Harness()
    assert h.call("schedule.get", {"id": "s"}) == (404, "Schedule not found")
    assert h.call("schedule.delete", {"id": "s"}) == (404, "Schedule not found")
    o = h.outcome("schedule.create", sched(promiseParam={"data": "eA=="}), 1_000)
    assert o.status == 200 and o.deadline == MIN
    body = h.ok("schedule.get", {"id": "s"})
    assert body["schedule"] == {
        "id": "s",
        "cron": "* * * * *",
        "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": 10 * MIN,
        "promiseParam": {"data": "eA=="},
        "promiseTags": {"resonate:target": T, "k": "v"},
        "createdAt": 1_000,
        "nextRunAt": MIN,
    }
    # Idempotent: an existing id answers the stored schedule.
    assert h.ok("schedule.create", sched(cron="0 * * * *"), 2_000) == body
    assert h.ok("schedule.delete", {"id": "s"}) == {}
    assert h.call("schedule.get", {"id": "s"}) == (404, "Schedule not found")


def test_invalid_cron_is_400_even_for_an_existing_id() -> None:
    h = Harness()
    for cron in ("not cron", "61 * * * *", "0 0 30 2 *"):
        assert h.call("schedule.create", sched(cron=cron)) == (400, "Invalid cron expression")
    h.ok("schedule.create", sched())
    assert h.call("schedule.create", sched(cron="x")) == (400, "Invalid cron expression")


def test_search() -> None:
    h = Harness()
    for i in range(12):
        tags = {"resonate:target": T, "team": "a" if i < 3 else "b"}
        h.ok("schedule.create", {**sched(f"s{i:02}"), "promiseTags": tags})
    page = h.ok("schedule.search", {})
    assert len(page["schedules"]) == 10 and page["cursor"] == "s09"
    page = h.ok("schedule.search", {"cursor": "s09"})
    assert [s["id"] for s in page["schedules"]] == ["s10", "s11"] and "cursor" not in page
    page = h.ok("schedule.search", {"tags": {"team": "a"}})
    assert [s["id"] for s in page["schedules"]] == ["s00", "s01", "s02"]


def test_firing_creates_a_promise_from_the_template() -> None:
    h = Harness()
    h.ok("schedule.create", sched(), 1_000)
    h.tick(MIN - 1)
    assert h.snap()["promises"] == []
    h.tick(MIN + 500)
    snap = h.snap()
    pid = f"s.{MIN}"
    assert snap["promises"] == [
        {
            "id": pid,
            "state": "pending",
            "param": {},
            "value": {},
            "tags": {
                "resonate:target": T,
                "k": "v",
                "resonate:schedule": "s",
                "resonate:origin": pid,
                "resonate:branch": pid,
                "resonate:parent": pid,
                "resonate:prefix": pid,
            },
            "timeoutAt": MIN + 10 * MIN,
            "createdAt": MIN,
        }
    ]
    assert snap["tasks"] == [{"id": pid, "state": "pending", "version": 0, "resumes": 0}]
    assert snap["taskTimeouts"] == [{"id": pid, "type": 0, "timeout": MIN + 500 + R}]
    assert executes(snap) == [(T, pid, 0)]
    s = h.ok("schedule.get", {"id": "s"})["schedule"]
    assert (s["lastRunAt"], s["nextRunAt"]) == (MIN, 2 * MIN)


def test_catch_up_fires_every_missed_occurrence_oldest_first() -> None:
    h = Harness()
    h.ok("schedule.create", sched(timeout=2 * MIN), 1_000)
    o = h.store.run(lambda tx: h.engine.tick(tx, 4 * MIN))
    assert o.deadline == 4 * MIN + R  # the new tasks' retry timers come first
    snap = h.snap()
    states = {p["id"]: (p["state"], p["createdAt"]) for p in snap["promises"]}
    assert states == {
        f"s.{MIN}": ("rejected_timedout", MIN),  # 4 min >= 1 min + 2 min: born settled
        f"s.{2 * MIN}": ("rejected_timedout", 2 * MIN),
        f"s.{3 * MIN}": ("pending", 3 * MIN),
        f"s.{4 * MIN}": ("pending", 4 * MIN),
    }
    tasks = {t["id"]: t["state"] for t in snap["tasks"]}
    assert tasks == {
        f"s.{MIN}": "fulfilled",
        f"s.{2 * MIN}": "fulfilled",
        f"s.{3 * MIN}": "pending",
        f"s.{4 * MIN}": "pending",
    }
    assert [e[1] for e in executes(snap)] == [f"s.{3 * MIN}", f"s.{4 * MIN}"]
    s = h.ok("schedule.get", {"id": "s"})["schedule"]
    assert (s["lastRunAt"], s["nextRunAt"]) == (4 * MIN, 5 * MIN)


def test_timer_schedule_promises_resolve_when_born_late() -> None:
    h = Harness()
    data = sched(timeout=0)
    data["promiseTags"]["resonate:timer"] = "true"
    h.ok("schedule.create", data, 1_000)
    h.tick(MIN)
    assert h.snap()["promises"][0]["state"] == "resolved"


def test_an_existing_promise_id_is_not_recreated() -> None:
    h = Harness()
    h.ok("schedule.create", {**sched(), "promiseId": "fixed"}, 1_000)
    h.tick(MIN)
    h.tick(2 * MIN)
    snap = h.snap()
    assert [p["id"] for p in snap["promises"]] == ["fixed"]
    assert snap["promises"][0]["createdAt"] == MIN


def test_deleted_schedule_stops_firing_and_keeps_its_promises() -> None:
    h = Harness()
    h.ok("schedule.create", sched(), 1_000)
    h.tick(MIN)
    h.ok("schedule.delete", {"id": "s"})
    h.tick(5 * MIN)
    assert [p["id"] for p in h.snap()["promises"]] == [f"s.{MIN}"]


def test_weekday_schedule_over_a_week() -> None:
    h = Harness()
    monday = 1_700_438_400_000  # 2023-11-20 00:00 UTC, a Monday
    h.ok("schedule.create", sched(cron="0 9 * * 1-5", timeout=MIN), monday)
    day = 24 * 60 * MIN
    for d in range(7):
        h.tick(monday + d * day + 12 * 60 * MIN)
    created = [p["createdAt"] for p in h.snap()["promises"]]
    assert created == [monday + d * day + 9 * 60 * MIN for d in range(5)]


def test_catch_up_is_bounded_per_pass_and_resumes_oldest_first() -> None:
    h = Harness()
    h.ok(
        "schedule.create",
        {**sched(cron="* * * * * *", timeout=0), "promiseId": "p{{.timestamp}}"},
        0,
    )
    o = h.store.run(lambda tx: h.engine.tick(tx, 1_500_000))
    assert o.deadline == 1_001_000  # still due: the timer loop runs the next pass at once
    assert len(h.snap()["promises"]) == 1000
    h.tick(1_500_000)
    created = sorted(p["createdAt"] for p in h.snap()["promises"])
    assert created == [1000 * i for i in range(1, 1501)]
    assert h.ok("schedule.get", {"id": "s"})["schedule"]["nextRunAt"] == 1_501_000
