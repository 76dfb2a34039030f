"""Task operations through ``Engine.apply`` (PROTOCOL.md §2.7-2.17, table §3.4 row by row)."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.engine.harness import Harness, R, T, executes, settle_action


def task_create(
    id: str, timeout_at: int = 1_000_000, pid: str = "w1", ttl: int = 5_000, **tags: str
) -> dict[str, Any]:
    data = {"id": id, "timeoutAt": timeout_at, "tags": {"resonate:target": T, **tags}}
    return {"pid": pid, "ttl": ttl, "action": {"kind": "promise.create", "head": {}, "data": data}}


def fence(id: str, version: int, kind: str, data: Any) -> dict[str, Any]:
    return {"id": id, "version": version, "action": {"kind": kind, "head": {}, "data": data}}


# -- creation rows --------------------------------------------------------------------------


def test_task_get() -> None:
    h = Harness()
    assert h.call("task.get", {"id": "t"}) == (404, "Task not found")
    h.task("t")
    assert h.get_task("t") == {"id": "t", "state": "pending", "version": 0, "resumes": 0}


def test_task_create_new_is_acquired_v1_without_execute() -> None:
    h = Harness()
    o = h.outcome("task.create", task_create("t"))
    assert o.status == 200 and o.wake_outbox is False and o.deadline == 1_000 + 5_000
    body: Any = msgspec.to_builtins(o.data)
    assert body["task"] == {
        "id": "t",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 5_000,
        "pid": "w1",
    }
    assert body["promise"]["state"] == "pending" and body["preload"] == []
    snap = h.snap()
    assert snap["messages"] == []
    assert snap["taskTimeouts"] == [{"id": "t", "type": 1, "timeout": 6_000}]
    assert snap["promiseTimeouts"] == [{"id": "t", "timeout": 1_000_000}]


def test_task_create_already_timed_out_returns_fulfilled_with_preload() -> None:
    h = Harness()
    h.create("r.1", tags={"resonate:branch": "r"})
    body = h.ok("task.create", task_create("r", 500, **{"resonate:branch": "r"}))
    assert body["task"] == {"id": "r", "state": "fulfilled", "version": 0, "resumes": 0}
    assert body["promise"]["state"] == "rejected_timedout"
    assert [p["id"] for p in body["preload"]] == ["r.1"]


def test_task_create_on_existing() -> None:
    h = Harness()
    h.create("plain")
    assert h.call("task.create", task_create("plain")) == (
        422,
        "The promise does not have a resonate:target tag",
    )
    h.task("t")
    body = h.ok("task.create", task_create("t", pid="w2", ttl=7_000))
    assert body["task"] == {
        "id": "t",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 7_000,
        "pid": "w2",
    }
    assert h.call("task.create", task_create("t", pid="w2")) == (409, "Already exists")
    h.settle("t")
    body = h.ok("task.create", task_create("t"))
    assert body["task"] == {"id": "t", "state": "fulfilled", "version": 1, "resumes": 0}


def test_task_create_on_suspended_or_halted_is_409() -> None:
    h = Harness()
    h.create("s.1")
    h.ok("task.create", task_create("s"))
    assert h.suspend("s", 1, "s.1")[0] == 200
    assert h.call("task.create", task_create("s")) == (409, "Already exists")
    h.ok("task.halt", {"id": "s"})
    assert h.call("task.create", task_create("s")) == (409, "Already exists")


# -- acquire / release / heartbeat / lease ----------------------------------------------------


def test_acquire() -> None:
    h = Harness()
    assert h.call("task.acquire", {"id": "t", "version": 0, "pid": "w", "ttl": 1}) == (
        404,
        "Task not found",
    )
    h.task("t", **{"resonate:branch": "t"})
    h.create("t.1", tags={"resonate:branch": "t"})
    assert h.call("task.acquire", {"id": "t", "version": 1, "pid": "w", "ttl": 1}) == (
        409,
        "Version mismatch",
    )
    body = h.acquire("t", 0, "w", 9_000)
    assert body["task"] == {
        "id": "t",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 9_000,
        "pid": "w",
    }
    assert [p["id"] for p in body["preload"]] == ["t.1"]
    assert h.snap()["taskTimeouts"] == [{"id": "t", "type": 1, "timeout": 10_000}]
    # State is checked before the version.
    assert h.call("task.acquire", {"id": "t", "version": 0, "pid": "w", "ttl": 1}) == (
        409,
        "Task is not pending",
    )


def test_release() -> None:
    h = Harness()
    h.task("t")
    assert h.call("task.release", {"id": "t", "version": 0}) == (
        409,
        "Task version mismatch or invalid state",
    )
    h.acquire("t")
    assert h.call("task.release", {"id": "t", "version": 0}) == (
        409,
        "Task version mismatch or invalid state",
    )
    assert h.ok("task.release", {"id": "t", "version": 1}, 2_000) == {}
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "pending", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == [{"id": "t", "type": 0, "timeout": 2_000 + R}]
    assert executes(snap) == [(T, "t", 1)]
    assert h.call("task.release", {"id": "x", "version": 0}) == (404, "Task not found")


def test_heartbeat_extends_matching_leases_only() -> None:
    h = Harness()
    h.task("a")
    h.task("a.1")
    h.acquire("a", 0, "w1", 10_000)
    h.acquire("a.1", 0, "w2", 10_000)
    body = h.ok(
        "task.heartbeat",
        {"pid": "w1", "tasks": [{"id": "a", "version": 1}, {"id": "a.1", "version": 1}]},
        5_000,
    )
    assert body == {}
    assert h.snap()["taskTimeouts"] == [
        {"id": "a", "type": 1, "timeout": 15_000},
        {"id": "a.1", "type": 1, "timeout": 11_000},
    ]
    h.ok("task.heartbeat", {"pid": "w1", "tasks": [{"id": "a", "version": 0}]}, 6_000)
    assert h.snap()["taskTimeouts"][0]["timeout"] == 15_000
    # Entries with an empty id are skipped.
    assert h.ok("task.heartbeat", {"pid": "w1", "tasks": [{"id": "", "version": 1}]}, 7_000) == {}


def test_lease_expiry_returns_the_task_to_pending() -> None:
    h = Harness()
    h.task("t")
    h.acquire("t", 0, "w1", 10_000)
    h.tick(10_999)
    assert h.get_task("t")["state"] == "acquired"
    h.tick(11_000)
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "pending", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == [{"id": "t", "type": 0, "timeout": 11_000 + R}]
    assert executes(snap) == [(T, "t", 1)]
    # The stale holder is fenced out.
    assert h.call("task.heartbeat", {"pid": "w1", "tasks": [{"id": "t", "version": 1}]})[0] == 200
    assert h.snap()["taskTimeouts"] == [{"id": "t", "type": 0, "timeout": 11_000 + R}]


def test_retry_timeout_resends_the_execute() -> None:
    h = Harness()
    h.task("t")
    h.store.run(lambda tx: tx.claim_outbox(10))
    assert h.snap()["messages"] == []
    o = h.store.run(lambda tx: h.engine.tick(tx, 1_000 + R))
    assert o.wake_outbox is True and o.deadline == 1_000 + 2 * R
    snap = h.snap()
    assert executes(snap) == [(T, "t", 0)]
    assert snap["taskTimeouts"] == [{"id": "t", "type": 0, "timeout": 1_000 + 2 * R}]


# -- fulfill -------------------------------------------------------------------------------------


def test_fulfill() -> None:
    h = Harness()
    body = {"id": "t", "version": 1, "action": settle_action("t")}
    assert h.call("task.fulfill", body) == (404, "Task not found")
    h.task("t")
    assert h.call("task.fulfill", body) == (409, "Task version mismatch or invalid state")
    h.acquire("t")
    h.ok("promise.register_listener", {"awaited": "t", "address": "poll://uni@c/1"})
    done = h.ok(
        "task.fulfill",
        {
            "id": "t",
            "version": 1,
            "action": {
                "kind": "x",
                "head": None,
                "data": {"id": "t", "state": "rejected_canceled", "value": {"data": "eA=="}},
            },
        },
        3_000,
    )
    assert done["promise"]["state"] == "rejected_canceled" and done["promise"]["settledAt"] == 3_000
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "fulfilled", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == [] and snap["promiseTimeouts"] == []
    assert [m["message"]["kind"] for m in snap["messages"]] == ["execute", "unblock"]
    assert h.call("task.fulfill", body) == (409, "Task version mismatch or invalid state")


def test_fulfill_after_the_promise_timed_out_is_409() -> None:
    h = Harness()
    h.task("t", timeout_at=5_000)
    h.acquire("t")
    got = h.call("task.fulfill", {"id": "t", "version": 1, "action": settle_action("t")}, 5_000)
    assert got == (409, "Task version mismatch or invalid state")
    # try_timeout's effects were committed with the error.
    assert h.snap()["promises"][0]["state"] == "rejected_timedout"


def test_fulfill_deletes_the_awaiter_callbacks() -> None:
    h = Harness()
    h.create("t.1")
    h.task("t")
    h.acquire("t")
    h.ok("promise.register_callback", {"awaited": "t.1", "awaiter": "t"})
    h.ok("task.fulfill", {"id": "t", "version": 1, "action": settle_action("t")})
    assert h.snap()["callbacks"] == []


# -- suspend -----------------------------------------------------------------------------------


def test_suspend_errors() -> None:
    h = Harness()
    assert h.suspend("t", 1, "t.1") == (404, "Task not found")
    h.task("t")
    assert h.suspend("t", 0, "t.1") == (409, "Task is not acquired or version mismatch")
    h.acquire("t")
    assert h.suspend("t", 0, "t.1") == (409, "Task is not acquired or version mismatch")
    assert h.suspend("t", 1, "t.1") == (422, "Awaited promise not found")
    h.create("t.1")
    h.settle("t.1")
    # A missing awaited takes precedence over the 300 case.
    assert h.suspend("t", 1, "t.1", "t.2") == (422, "Awaited promise not found")


def test_suspend_all_pending() -> None:
    h = Harness()
    h.create("t.1")
    h.create("t.2")
    h.task("t")
    h.acquire("t")
    assert h.suspend("t", 1, "t.1", "t.2", "t.1") == (200, {})
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "suspended", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == []
    assert snap["callbacks"] == [
        {"awaiter": "t", "awaited": "t.1"},
        {"awaiter": "t", "awaited": "t.2"},
    ]


def test_suspend_with_a_settled_awaited_answers_300() -> None:
    h = Harness()
    h.create("t.1", tags={"resonate:branch": "t"})
    h.create("t.2")
    h.task("t", **{"resonate:branch": "t"})
    h.acquire("t", ttl=10_000)
    h.ok("promise.register_callback", {"awaited": "t.2", "awaiter": "t"})
    h.settle("t.2")
    assert h.get_task("t")["resumes"] == 1
    status, body = h.suspend("t", 1, "t.1", "t.2")
    assert status == 300
    assert [p["id"] for p in body["preload"]] == ["t.1"]
    snap = h.snap()
    assert snap["tasks"] == [
        {"id": "t", "state": "acquired", "version": 1, "resumes": 0, "ttl": 10_000, "pid": "w1"}
    ]
    assert snap["callbacks"] == []
    assert snap["taskTimeouts"] == [{"id": "t", "type": 1, "timeout": 11_000}]


def test_suspended_task_resumes_when_its_awaited_settles() -> None:
    h = Harness()
    h.create("t.1")
    h.create("t.2")
    h.task("t")
    h.acquire("t")
    h.suspend("t", 1, "t.1", "t.2")
    o = h.outcome("promise.settle", {"id": "t.1", "state": "resolved"}, 4_000)
    assert o.wake_outbox is True and o.deadline == 4_000 + R
    assert h.get_task("t") == {"id": "t", "state": "pending", "version": 1, "resumes": 1}
    snap = h.snap()
    assert executes(snap) == [(T, "t", 1)]
    assert snap["callbacks"] == [{"awaiter": "t", "awaited": "t.2"}]  # §0.1 item 7
    body = h.acquire("t", 1)
    assert body["task"]["resumes"] == 0 and body["task"]["version"] == 2
    assert h.snap()["callbacks"] == [{"awaiter": "t", "awaited": "t.2"}]


def test_callback_on_an_awaiter_past_its_deadline_is_dropped() -> None:
    h = Harness()
    h.create("t.1")
    h.create("t.2")
    h.task("t", timeout_at=5_000)
    h.acquire("t")
    h.suspend("t", 1, "t.1", "t.2")
    h.store.run(lambda tx: tx.claim_outbox(10))
    h.settle("t.1", now=6_000)
    snap = h.snap()
    assert snap["tasks"][0]["state"] == "suspended"
    assert snap["callbacks"] == [{"awaiter": "t", "awaited": "t.2"}]
    assert snap["messages"] == []
    h.tick(6_000)
    assert h.get_task("t")["state"] == "fulfilled"
    assert h.snap()["callbacks"] == []


# -- fence -------------------------------------------------------------------------------------


def test_fence_create_and_settle() -> None:
    h = Harness()
    h.task("f", **{"resonate:branch": "f"})
    h.acquire("f")
    child = {
        "id": "f.1",
        "timeoutAt": 900_000,
        "tags": {"resonate:target": T, "resonate:branch": "f"},
    }
    body = h.ok("task.fence", fence("f", 1, "promise.create", child), 2_000)
    assert body["action"]["kind"] == "promise.create"
    assert body["action"]["head"] == {"corrId": "corr", "status": 200, "version": "2026-04-01"}
    assert body["action"]["data"]["promise"]["id"] == "f.1"
    assert [p["id"] for p in body["preload"]] == ["f.1"]
    assert (T, "f.1", 0) in executes(h.snap())
    body = h.ok("task.fence", fence("f", 1, "promise.settle", {"id": "f.1", "state": "resolved"}))
    assert body["action"]["data"]["promise"]["state"] == "resolved"
    body = h.ok("task.fence", fence("f", 1, "promise.settle", {"id": "f.9", "state": "resolved"}))
    assert body["action"]["head"]["status"] == 404
    assert body["action"]["data"] == "Promise not found"


def test_fence_errors_in_order() -> None:
    h = Harness()
    # The inner action is validated before the task is looked up (§0.1 item 3).
    assert h.call("task.fence", fence("f", 1, "promise.get", {"id": "x"})) == (
        400,
        "Invalid fence action kind",
    )
    status, msg = h.call("task.fence", fence("f", 1, "promise.create", {"id": "x"}))
    assert status == 400 and msg.startswith("Invalid action data: ")
    status, msg = h.call("task.fence", fence("f", 1, "promise.settle", []))
    assert status == 400 and msg.startswith("Invalid action data: ")
    bad = {"id": "f.1", "timeoutAt": 5, "tags": {"resonate:target": "x"}}
    assert h.call("task.fence", fence("f", 1, "promise.create", bad)) == (
        400,
        "Invalid resonate:target address",
    )
    ok = {"id": "f.1", "timeoutAt": 5}
    assert h.call("task.fence", fence("f", 1, "promise.create", ok)) == (404, "Task not found")
    h.task("f")
    assert h.call("task.fence", fence("f", 1, "promise.create", ok)) == (409, "Version mismatch")
    assert h.snap()["promises"][0]["id"] == "f"  # nothing created


def test_fence_preload_opt_out() -> None:
    # Sustain-only "sustain:preload" (docs/decisions.md): absent or true = the whole branch,
    # false = no preload, the fenced action itself unchanged; any other type is a 400.
    h = Harness()
    h.task("f", **{"resonate:branch": "f"})
    h.acquire("f")
    h.create("f.1", tags={"resonate:branch": "f"})

    def child(id: str) -> dict[str, Any]:
        return {"id": id, "timeoutAt": 900_000, "tags": {"resonate:branch": "f"}}

    full = h.ok("task.fence", fence("f", 1, "promise.create", child("f.2")))
    assert [p["id"] for p in full["preload"]] == ["f.1", "f.2"]
    kept = h.ok(
        "task.fence", {**fence("f", 1, "promise.create", child("f.3")), "sustain:preload": True}
    )
    assert [p["id"] for p in kept["preload"]] == ["f.1", "f.2", "f.3"]
    bare = h.ok(
        "task.fence", {**fence("f", 1, "promise.create", child("f.4")), "sustain:preload": False}
    )
    assert bare["preload"] == []
    assert bare["action"]["head"]["status"] == 200
    assert bare["action"]["data"]["promise"]["id"] == "f.4"
    settle = {"id": "f.4", "state": "resolved"}
    bare = h.ok("task.fence", {**fence("f", 1, "promise.settle", settle), "sustain:preload": False})
    assert bare["preload"] == [] and bare["action"]["data"]["promise"]["state"] == "resolved"
    for wrong in ["false", 0, None]:
        request = {**fence("f", 1, "promise.create", child("f.5")), "sustain:preload": wrong}
        status, msg = h.call("task.fence", request)
        assert status == 400 and msg.startswith("Invalid request: ")
        assert "sustain:preload" in msg
    assert "f.5" not in {p["id"] for p in h.snap()["promises"]}


def test_fence_runs_try_timeout_even_when_failing() -> None:
    h = Harness()
    h.create("f.1", 2_000)
    h.task("f", timeout_at=2_000)
    h.acquire("f")
    got = h.call(
        "task.fence", fence("f", 1, "promise.settle", {"id": "f.1", "state": "resolved"}), 3_000
    )
    assert got == (409, "Version mismatch")
    states = {p["id"]: p["state"] for p in h.snap()["promises"]}
    assert states == {"f": "rejected_timedout", "f.1": "rejected_timedout"}


# -- halt / continue / search -----------------------------------------------------------------


def test_halt_and_continue() -> None:
    h = Harness()
    assert h.call("task.halt", {"id": "t"}) == (404, "Task not found")
    assert h.call("task.continue", {"id": "t"}) == (404, "Task not found")
    h.task("t")
    assert h.call("task.continue", {"id": "t"}) == (409, "Task is not halted")
    h.acquire("t")
    assert h.ok("task.halt", {"id": "t"}) == {}
    assert h.ok("task.halt", {"id": "t"}) == {}
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "halted", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == []
    assert h.call("task.fulfill", {"id": "t", "version": 1, "action": settle_action("t")})[0] == 409
    assert h.ok("task.continue", {"id": "t"}, 7_000) == {}
    snap = h.snap()
    assert snap["tasks"] == [{"id": "t", "state": "pending", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == [{"id": "t", "type": 0, "timeout": 7_000 + R}]
    assert executes(snap) == [(T, "t", 1)]
    h.settle("t")
    assert h.call("task.halt", {"id": "t"}) == (409, "Task is fulfilled")


def test_halt_suspended_keeps_callbacks_and_is_not_resumed() -> None:
    h = Harness()
    h.create("t.1")
    h.task("t")
    h.acquire("t")
    h.suspend("t", 1, "t.1")
    h.ok("task.halt", {"id": "t"})
    h.store.run(lambda tx: tx.claim_outbox(10))
    h.settle("t.1")
    assert h.get_task("t") == {"id": "t", "state": "halted", "version": 1, "resumes": 1}
    assert h.snap()["messages"] == []


def test_task_search() -> None:
    h = Harness()
    for i in range(3):
        h.task(f"t{i}")
    h.acquire("t1")
    page = h.ok("task.search", {"limit": 1})
    assert [t["id"] for t in page["tasks"]] == ["t0"] and page["cursor"] == "t0"
    page = h.ok("task.search", {"state": "acquired"})
    assert page == {
        "tasks": [
            {
                "id": "t1",
                "state": "acquired",
                "version": 1,
                "resumes": 0,
                "ttl": 60_000,
                "pid": "w1",
            }
        ]
    }
    page = h.ok("task.search", {"cursor": "t1"})
    assert [t["id"] for t in page["tasks"]] == ["t2"] and "cursor" not in page


def test_huge_ttl_saturates_instead_of_overflowing() -> None:
    h = Harness()
    h.task("t")
    h.acquire("t", ttl=2**63 - 1)
    assert h.snap()["taskTimeouts"] == [{"id": "t", "type": 1, "timeout": 2**63 - 1}]
    h.ok("task.heartbeat", {"pid": "w1", "tasks": [{"id": "t", "version": 1}]}, 5_000)
    assert h.snap()["taskTimeouts"] == [{"id": "t", "type": 1, "timeout": 2**63 - 1}]
