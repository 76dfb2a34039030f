"""The settlement chain, try_timeout batching, the tick, preload and debug ops."""

from __future__ import annotations

import msgspec

from tests.engine.harness import Harness, R, T, executes, unblocks


def test_tick_times_out_target_promises_batch_wise() -> None:
    h = Harness()
    h.task("a", timeout_at=5_000)
    h.task("a.1", timeout_at=5_000)
    h.acquire("a")
    assert h.suspend("a", 1, "a.1") == (200, {})
    h.store.run(lambda tx: tx.claim_outbox(10))
    assert h.tick(5_000) == []
    snap = h.snap()
    assert [(p["id"], p["state"], p["settledAt"]) for p in snap["promises"]] == [
        ("a", "rejected_timedout", 5_000),
        ("a.1", "rejected_timedout", 5_000),
    ]
    # a was fulfilled in step 2 of the same batch: it is not resumed.
    assert [t["state"] for t in snap["tasks"]] == ["fulfilled", "fulfilled"]
    assert snap["messages"] == [] and snap["callbacks"] == [] and snap["taskTimeouts"] == []


def test_tick_resumes_a_suspended_awaiter_of_a_timed_out_promise() -> None:
    h = Harness()
    h.task("a")
    h.task("a.1", timeout_at=5_000)
    h.acquire("a")
    h.suspend("a", 1, "a.1")
    h.store.run(lambda tx: tx.claim_outbox(10))
    h.tick(6_000)
    assert h.get_task("a") == {"id": "a", "state": "pending", "version": 1, "resumes": 1}
    snap = h.snap()
    assert executes(snap) == [(T, "a", 1)]
    assert {"id": "a", "type": 0, "timeout": 6_000 + R} in snap["taskTimeouts"]


def test_timer_promise_resolves_on_tick_and_unblocks_listeners() -> None:
    h = Harness()
    h.task("sleep", timeout_at=3_000, **{"resonate:timer": "true"})
    h.ok("promise.register_listener", {"awaited": "sleep", "address": "poll://uni@c/1"})
    o = h.store.run(lambda tx: h.engine.tick(tx, 3_500))
    assert o.status == 200 and o.wake_outbox is True
    snap = h.snap()
    p = snap["promises"][0]
    assert (p["state"], p["settledAt"]) == ("resolved", 3_000)
    assert unblocks(snap) == [("poll://uni@c/1", "sleep")]
    assert snap["listeners"] == []


def test_try_timeout_batches_the_listed_ids() -> None:
    h = Harness()
    h.task("a")
    h.create("a.1", 5_000)
    h.task("a.2", timeout_at=5_000)
    h.acquire("a")
    h.ok("promise.register_callback", {"awaited": "a.1", "awaiter": "a.2"})
    assert h.suspend("a", 1, "a.1", "a.2") == (200, {})  # nothing expired yet at now=1000
    h.store.run(lambda tx: tx.claim_outbox(10))
    got = h.call("task.get", {"id": "a.2"}, 5_000)
    assert got[1]["task"]["state"] == "fulfilled"
    # Only a.2 was touched: a.1 (target-less) still reads pending in the snapshot.
    states = {p["id"]: p["state"] for p in h.snap()["promises"]}
    assert states == {"a": "pending", "a.1": "pending", "a.2": "rejected_timedout"}
    assert h.get_task("a") == {"id": "a", "state": "pending", "version": 1, "resumes": 1}


def test_preload_uses_the_branch_tag_and_ignores_an_empty_one() -> None:
    h = Harness()
    h.create("r.2", tags={"resonate:branch": "r"})
    h.create("r.1", tags={"resonate:branch": "r"})
    # An empty branch only passes validation on ids starting with ".".
    h.create(".q", tags={"resonate:branch": ""})
    h.create("x", tags={"resonate:branch": "x"})
    h.task("r", **{"resonate:branch": "r"})
    assert [p["id"] for p in h.acquire("r")["preload"]] == ["r.1", "r.2"]
    h.task(".e", **{"resonate:branch": ""})
    assert h.acquire(".e")["preload"] == []
    h.task("n")
    assert h.acquire("n")["preload"] == []


def test_debug_tick_checks_debug_time() -> None:
    h = Harness()
    got = h.call("debug.tick", {"time": 5}, debug_time=6)
    assert got == (400, "resonate:debug_time must equal data.time")
    assert h.call("debug.tick", {"time": 5}, debug_time=5) == (200, [])
    assert h.call("debug.tick", {"time": 5}) == (200, [])
    assert h.call("debug.tick", {"tim": 5}) == (400, "Missing or invalid 'time' field")


def test_debug_start_stop_reset() -> None:
    h = Harness()
    assert h.ok("debug.start", {}) == {}
    h.task("t")
    h.ok("promise.register_listener", {"awaited": "t", "address": "poll://any@g"})
    assert h.ok("debug.reset", {}) == {}
    snap = h.snap()
    assert all(snap[k] == [] for k in snap)
    assert h.ok("debug.stop", {}) == {}


def test_snapshot_shape_and_order() -> None:
    h = Harness()
    h.create("b.2")
    h.create("b.1")
    h.task("b")
    h.task("a")
    h.create("a.1")
    h.acquire("b")
    h.acquire("a")
    h.suspend("b", 1, "b.2", "b.1")
    h.suspend("a", 1, "a.1")
    for addr in ("poll://uni@z/1", "poll://any@a"):
        h.ok("promise.register_listener", {"awaited": "b.1", "address": addr})
        h.ok("promise.register_listener", {"awaited": "a.1", "address": addr})
    h.settle("a.1")
    snap = h.snap()
    assert list(snap) == [
        "promises",
        "promiseTimeouts",
        "callbacks",
        "listeners",
        "tasks",
        "taskTimeouts",
        "messages",
    ]
    assert [p["id"] for p in snap["promises"]] == ["a", "a.1", "b", "b.1", "b.2"]
    assert snap["callbacks"] == [
        {"awaiter": "b", "awaited": "b.1"},
        {"awaiter": "b", "awaited": "b.2"},
    ]
    assert snap["listeners"] == [
        {"id": "b.1", "address": "poll://any@a"},
        {"id": "b.1", "address": "poll://uni@z/1"},
    ]
    assert [(m["message"]["kind"], m["address"]) for m in snap["messages"]] == [
        ("execute", T),
        ("execute", T),
        ("unblock", "poll://any@a"),
        ("unblock", "poll://uni@z/1"),
    ]
    assert executes(snap) == [(T, "a", 1), (T, "b", 0)]
    assert snap["promiseTimeouts"] == [
        {"id": "a", "timeout": 1_000_000},
        {"id": "b", "timeout": 1_000_000},
    ]
    encoded = msgspec.json.encode(h.outcome("debug.snap", {}).data)
    assert b'"head":{}' in encoded
