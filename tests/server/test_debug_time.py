"""``resonate:debug_time`` drives a real server's time in debug mode (PROTOCOL.md §1.5).

A request's debug time is its "now": a promise's ``createdAt`` and timeout, a task's retry
timeout and lease, a schedule's ``createdAt`` and ``nextRunAt``.  ``debug.tick`` runs the
timer pass at its ``time``, so promise timeouts, lease expiry and schedule firings follow
the test's clock and never the wall clock (the background loops are paused by ``debug.start``).
Without debug mode the head field is dropped: the wall clock is "now".
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.servers import ServerProcess, unique

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z: far in the past, so the wall clock cannot pass
RETRY = 30_000  # tasks.retry_timeout's default


def at(server: ServerProcess, when: int, kind: str, data: Any) -> Any:
    return server.ok(kind, data, **{"resonate:debug_time": when})


def task_timeout(server: ServerProcess, task_id: str) -> tuple[int, int] | None:
    for row in server.ok("debug.snap", {})["taskTimeouts"]:
        if row["id"] == task_id:
            return row["type"], row["timeout"]
    return None


@pytest.fixture(params=[("dev", ()), ("serve", ("--debug",))], ids=["dev", "serve-debug"])
def debug(request: pytest.FixtureRequest, spawn: Any) -> ServerProcess:
    command, flags = request.param  # `sustain dev` is in debug mode without a flag
    server: ServerProcess = spawn(*flags, command=command)
    # Pause the wall-clock loops: from here on only debug.tick moves timers.
    assert server.ok("debug.start", {}) == {}
    return server


def test_created_at_and_promise_timeout_follow_debug_time(debug: ServerProcess) -> None:
    pid = unique("dt")
    created = at(debug, T, "promise.create", {"id": pid, "timeoutAt": T + 5000})["promise"]
    assert (created["state"], created["createdAt"]) == ("pending", T)
    assert at(debug, T + 4999, "promise.get", {"id": pid})["promise"]["state"] == "pending"
    # A request at the deadline times the promise out (try_timeout at that request's "now").
    late = at(debug, T + 5000, "promise.get", {"id": pid})["promise"]
    assert (late["state"], late["settledAt"]) == ("rejected_timedout", T + 5000)

    settled = unique("dt")
    at(debug, T, "promise.create", {"id": settled, "timeoutAt": T + 60_000})
    done = at(debug, T + 7, "promise.settle", {"id": settled, "state": "resolved"})["promise"]
    assert done["settledAt"] == T + 7

    # Born timed out: debug time already past timeoutAt.
    past = at(debug, T, "promise.create", {"id": unique("dt"), "timeoutAt": T - 1})["promise"]
    assert past["state"] == "rejected_timedout"


def test_debug_tick_times_out_target_promises(debug: ServerProcess) -> None:
    pid = unique("dt")
    tags = {"resonate:target": "poll://any@dt"}
    at(debug, T, "promise.create", {"id": pid, "timeoutAt": T + 5000, "tags": tags})
    assert task_timeout(debug, pid) == (0, T + RETRY)
    assert debug.ok("debug.tick", {"time": T + 4999}) == []
    assert debug.ok("debug.snap", {})["promiseTimeouts"] == [{"id": pid, "timeout": T + 5000}]
    assert debug.ok("debug.tick", {"time": T + 5000}) == []
    snap = debug.ok("debug.snap", {})
    (promise,) = [p for p in snap["promises"] if p["id"] == pid]
    assert (promise["state"], promise["settledAt"]) == ("rejected_timedout", T + 5000)


def test_leases_follow_debug_time(debug: ServerProcess) -> None:
    pid = unique("dt")
    tags = {"resonate:target": "poll://any@dt"}
    at(debug, T, "promise.create", {"id": pid, "timeoutAt": T + 3_600_000, "tags": tags})
    acquired = at(debug, T + 10, "task.acquire", {"id": pid, "version": 0, "pid": "w", "ttl": 3000})
    assert acquired["task"]["state"] == "acquired"
    assert task_timeout(debug, pid) == (1, T + 10 + 3000)
    # A heartbeat extends the lease from its own "now" by the acquired ttl.
    heartbeat = {"pid": "w", "tasks": [{"id": pid, "version": 1}]}
    assert at(debug, T + 2000, "task.heartbeat", heartbeat) == {}
    assert task_timeout(debug, pid) == (1, T + 5000)
    debug.ok("debug.tick", {"time": T + 4999})
    assert at(debug, T + 4999, "task.get", {"id": pid})["task"]["state"] == "acquired"
    # (A request without debug time is at the wall clock, long after every deadline here.)
    # Expiry at the lease's deadline: back to pending, retried R after the tick.
    debug.ok("debug.tick", {"time": T + 5000})
    assert at(debug, T + 5000, "task.get", {"id": pid})["task"]["state"] == "pending"
    assert task_timeout(debug, pid) == (0, T + 5000 + RETRY)


def test_schedule_firings_follow_debug_time(debug: ServerProcess) -> None:
    sid = unique("dt")
    schedule = at(
        debug,
        T,
        "schedule.create",
        {
            "id": sid,
            "cron": "* * * * *",
            "promiseId": "{{.id}}.{{.timestamp}}",
            "promiseTimeout": 60_000,
            "promiseTags": {"resonate:target": "poll://any@dt", "mark": sid},
        },
    )["schedule"]
    minute = T + 40_000  # the next whole minute after T (T is at :20 seconds)
    assert (schedule["createdAt"], schedule["nextRunAt"]) == (T, minute)
    debug.ok("debug.tick", {"time": minute - 1})
    assert debug.ok("promise.search", {"tags": {"mark": sid}})["promises"] == []
    debug.ok("debug.tick", {"time": minute}, **{"resonate:debug_time": minute})
    (fired,) = debug.ok("promise.search", {"tags": {"mark": sid}})["promises"]
    assert (fired["createdAt"], fired["timeoutAt"]) == (minute, minute + 60_000)
    after = debug.ok("schedule.get", {"id": sid})["schedule"]
    assert (after["lastRunAt"], after["nextRunAt"]) == (minute, minute + 60_000)


def test_batch_elements_share_the_batch_debug_time(debug: ServerProcess) -> None:
    pid = unique("dt")
    element = {
        "kind": "promise.create",
        "head": {"corrId": "e1"},
        "data": {"id": pid, "timeoutAt": T + 5000},
    }
    answer = debug.ok("sustain.batch", {"requests": [element]}, **{"resonate:debug_time": T})
    assert answer["responses"][0]["data"]["promise"]["createdAt"] == T


def test_debug_time_is_ignored_without_debug_mode(spawn: Any) -> None:
    server: ServerProcess = spawn()
    before = time.time_ns() // 1_000_000
    pid = unique("dt")
    tags = {"resonate:target": "poll://any@dt"}
    created = at(server, T, "promise.create", {"id": pid, "timeoutAt": T + 5000, "tags": tags})
    # T + 5000 is long past: without debug mode the wall clock is "now", so it is born timed out.
    assert created["promise"]["state"] == "rejected_timedout"
    live = unique("dt")
    far = before + 3_600_000
    fresh = at(server, T, "promise.create", {"id": live, "timeoutAt": far, "tags": tags})
    assert fresh["promise"]["createdAt"] >= before
    acquire = {"id": live, "version": 0, "pid": "w", "ttl": 3000}
    assert at(server, T, "task.acquire", acquire)["task"]["state"] == "acquired"
    # The lease runs from the wall clock: a debug time long past does not expire it.
    assert at(server, T + 10_000, "task.get", {"id": live})["task"]["state"] == "acquired"
    schedule = at(
        server,
        T,
        "schedule.create",
        {
            "id": unique("dt"),
            "cron": "* * * * *",
            "promiseId": "{{.id}}.{{.timestamp}}",
            "promiseTimeout": 60_000,
            "promiseTags": tags,
        },
    )["schedule"]
    assert schedule["createdAt"] >= before
    assert schedule["nextRunAt"] > before
    tick = server.rpc("debug.tick", {"time": T})
    assert (tick.status, tick.data) == (403, "Debug operations are disabled")
