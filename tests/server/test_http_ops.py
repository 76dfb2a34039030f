"""Every operation's happy path through a real server process (PROTOCOL.md §2)."""

from __future__ import annotations

import time

from tests.servers import ServerProcess, unique

HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def test_promise_create_get_settle(server: ServerProcess) -> None:
    pid = unique("prom")
    timeout = now_ms() + HOUR
    created = server.ok(
        "promise.create",
        {"id": pid, "timeoutAt": timeout, "param": {"headers": {"a": "b"}, "data": "ZGF0YQ=="}},
    )["promise"]
    assert created["state"] == "pending"
    assert created["param"] == {"headers": {"a": "b"}, "data": "ZGF0YQ=="}
    assert created["value"] == {}
    assert "settledAt" not in created
    again = server.ok("promise.create", {"id": pid, "timeoutAt": 1})["promise"]
    assert again == created  # idempotent: the existing record
    assert server.ok("promise.get", {"id": pid})["promise"] == created
    settled = server.ok(
        "promise.settle", {"id": pid, "state": "resolved", "value": {"data": "ZG9uZQ=="}}
    )["promise"]
    assert settled["state"] == "resolved"
    assert settled["value"] == {"data": "ZG9uZQ=="}
    assert settled["settledAt"] >= created["createdAt"]


def test_promise_search_with_pagination(server: ServerProcess) -> None:
    tag = unique("search")
    ids = sorted(f"{tag}-{i}" for i in range(3))
    for pid in ids:
        server.ok("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR, "tags": {"s": tag}})
    first = server.ok("promise.search", {"tags": {"s": tag}, "limit": 2})
    assert [p["id"] for p in first["promises"]] == ids[:2]
    rest = server.ok("promise.search", {"tags": {"s": tag}, "limit": 2, "cursor": first["cursor"]})
    assert [p["id"] for p in rest["promises"]] == ids[2:]
    assert "cursor" not in rest
    pending = server.ok("promise.search", {"tags": {"s": tag}, "state": "resolved"})
    assert pending["promises"] == []


def test_register_callback_and_listener(server: ServerProcess) -> None:
    root = unique("cb")
    child = f"{root}.1"
    target = {"resonate:target": "poll://any@nobody-listens"}
    server.ok("promise.create", {"id": root, "timeoutAt": now_ms() + HOUR, "tags": target})
    server.ok("promise.create", {"id": child, "timeoutAt": now_ms() + HOUR})
    answer = server.ok("promise.register_callback", {"awaited": child, "awaiter": root})
    assert answer["promise"]["id"] == child
    listened = server.ok(
        "promise.register_listener", {"awaited": child, "address": "poll://uni@nobody/x"}
    )
    assert listened["promise"]["id"] == child
    missing = server.rpc("promise.register_listener", {"awaited": child, "address": "ftp://x"})
    assert (missing.status, missing.data) == (400, "Invalid listener address")


def test_task_lifecycle(server: ServerProcess) -> None:
    """create -> acquire -> heartbeat -> fence -> suspend (300 and 200) -> resume -> fulfill."""
    root = unique("task")
    target = {"resonate:target": "poll://any@nobody-listens"}
    server.ok("promise.create", {"id": root, "timeoutAt": now_ms() + HOUR, "tags": target})
    task = server.ok("task.get", {"id": root})["task"]
    assert task == {"id": root, "state": "pending", "version": 0, "resumes": 0}

    acquired = server.ok("task.acquire", {"id": root, "version": 0, "pid": "w1", "ttl": 60000})
    assert acquired["task"] == {
        "id": root,
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 60000,
        "pid": "w1",
    }
    assert acquired["promise"]["id"] == root
    assert acquired["preload"] == []
    conflict = server.rpc("task.acquire", {"id": root, "version": 1, "pid": "w2", "ttl": 1000})
    assert (conflict.status, conflict.data) == (409, "Task is not pending")

    assert server.ok("task.heartbeat", {"pid": "w1", "tasks": [{"id": root, "version": 1}]}) == {}

    child = f"{root}.1"
    fenced = server.ok(
        "task.fence",
        {
            "id": root,
            "version": 1,
            "action": {
                "kind": "promise.create",
                "head": {},
                "data": {"id": child, "timeoutAt": now_ms() + HOUR, "tags": {}},
            },
        },
    )
    assert fenced["action"]["head"]["status"] == 200
    assert fenced["action"]["data"]["promise"]["id"] == child

    other = f"{root}.2"
    server.ok("promise.create", {"id": other, "timeoutAt": now_ms() + HOUR})
    server.ok("promise.settle", {"id": other, "state": "resolved"})
    callback = {"kind": "promise.register_callback", "head": {}}
    ready = server.rpc(
        "task.suspend",
        {
            "id": root,
            "version": 1,
            "actions": [{**callback, "data": {"awaited": other, "awaiter": root}}],
        },
    )
    assert (ready.status, ready.head_status) == (300, 300)
    assert [p["id"] for p in ready.data["preload"]] == []

    suspended = server.ok(
        "task.suspend",
        {
            "id": root,
            "version": 1,
            "actions": [{**callback, "data": {"awaited": child, "awaiter": root}}],
        },
    )
    assert suspended == {}
    assert server.ok("task.get", {"id": root})["task"]["state"] == "suspended"

    server.ok("promise.settle", {"id": child, "state": "resolved"})
    resumed = server.ok("task.get", {"id": root})["task"]
    assert (resumed["state"], resumed["resumes"]) == ("pending", 1)

    again = server.ok("task.acquire", {"id": root, "version": 1, "pid": "w1", "ttl": 60000})
    assert again["task"]["version"] == 2
    fulfilled = server.ok(
        "task.fulfill",
        {
            "id": root,
            "version": 2,
            "action": {
                "kind": "promise.settle",
                "head": {},
                "data": {"id": root, "state": "resolved", "value": {"data": "b2s="}},
            },
        },
    )
    assert fulfilled["promise"]["state"] == "resolved"
    assert server.ok("task.get", {"id": root})["task"]["state"] == "fulfilled"


def test_fence_preload_opt_out(server: ServerProcess) -> None:
    """Sustain's "sustain:preload": absent = the whole branch, false = none, a string = 400."""
    root = unique("fp")
    branch = {"resonate:branch": root}
    tags = {"resonate:target": "poll://any@nobody-listens", **branch}
    server.ok("promise.create", {"id": root, "timeoutAt": now_ms() + HOUR, "tags": tags})
    server.ok("promise.create", {"id": f"{root}.1", "timeoutAt": now_ms() + HOUR, "tags": branch})
    server.ok("task.acquire", {"id": root, "version": 0, "pid": "w1", "ttl": 60000})

    def fence(child: str, **extra: object) -> dict[str, object]:
        data = {"id": child, "timeoutAt": now_ms() + HOUR, "tags": branch}
        action = {"kind": "promise.create", "head": {}, "data": data}
        return {"id": root, "version": 1, "action": action, **extra}

    full = server.ok("task.fence", fence(f"{root}.2"))
    assert [p["id"] for p in full["preload"]] == [f"{root}.1", f"{root}.2"]
    bare = server.ok("task.fence", fence(f"{root}.3", **{"sustain:preload": False}))
    assert bare["preload"] == []
    assert bare["action"]["head"]["status"] == 200
    assert bare["action"]["data"]["promise"]["id"] == f"{root}.3"
    wrong = server.rpc("task.fence", fence(f"{root}.4", **{"sustain:preload": "no"}))
    assert wrong.status == 400
    assert wrong.data.startswith("Invalid request: ") and "sustain:preload" in wrong.data
    assert server.rpc("promise.get", {"id": f"{root}.4"}).status == 404


def test_task_create_release_halt_continue_search(server: ServerProcess) -> None:
    root = unique("tc")
    created = server.ok(
        "task.create",
        {
            "pid": "w9",
            "ttl": 30000,
            "action": {
                "kind": "promise.create",
                "head": {},
                "data": {
                    "id": root,
                    "timeoutAt": now_ms() + HOUR,
                    "tags": {"resonate:target": "poll://any@nobody-listens"},
                },
            },
        },
    )
    assert created["task"]["state"] == "acquired"
    assert created["task"]["version"] == 1
    assert server.ok("task.release", {"id": root, "version": 1}) == {}
    assert server.ok("task.get", {"id": root})["task"]["state"] == "pending"
    assert server.ok("task.halt", {"id": root}) == {}
    assert server.ok("task.get", {"id": root})["task"]["state"] == "halted"
    assert server.ok("task.continue", {"id": root}) == {}
    assert server.ok("task.get", {"id": root})["task"]["state"] == "pending"
    found = server.ok("task.search", {"state": "pending", "limit": 1000})
    assert root in {t["id"] for t in found["tasks"]}


def test_schedules(server: ServerProcess) -> None:
    sid = unique("sched")
    data = {
        "id": sid,
        "cron": "0 9 * * 1-5",
        "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": 60000,
        "promiseTags": {"resonate:target": "poll://any@nobody-listens", "mark": sid},
    }
    schedule = server.ok("schedule.create", data)["schedule"]
    assert schedule["id"] == sid
    assert schedule["nextRunAt"] > now_ms()
    assert "lastRunAt" not in schedule
    assert server.ok("schedule.get", {"id": sid})["schedule"] == schedule
    found = server.ok("schedule.search", {"tags": {"mark": sid}})
    assert [s["id"] for s in found["schedules"]] == [sid]
    bad = server.rpc("schedule.create", {**data, "id": unique("bad"), "cron": "61 * * * *"})
    assert (bad.status, bad.data) == (400, "Invalid cron expression")
    assert server.ok("schedule.delete", {"id": sid}) == {}
    gone = server.rpc("schedule.get", {"id": sid})
    assert (gone.status, gone.data) == (404, "Schedule not found")


def test_debug_operations(debug_server: ServerProcess) -> None:
    assert debug_server.ok("debug.start", {}) == {}
    try:
        pid = unique("dbg")
        base = 1_000_000
        debug_server.ok(
            "promise.create",
            {"id": pid, "timeoutAt": base + 5000, "tags": {"resonate:target": "poll://any@x"}},
            **{"resonate:debug_time": base},
        )
        snap = debug_server.ok("debug.snap", {})
        assert pid in [p["id"] for p in snap["promises"]]
        tick = debug_server.rpc("debug.tick", {"time": base + 5000})
        assert (tick.status, tick.data) == (200, [])
        timed_out = debug_server.ok("promise.get", {"id": pid}, **{"resonate:debug_time": base})
        assert timed_out["promise"]["state"] == "rejected_timedout"
        assert debug_server.ok("debug.reset", {}) == {}
        assert debug_server.ok("debug.snap", {})["promises"] == []
    finally:
        assert debug_server.ok("debug.stop", {}) == {}
