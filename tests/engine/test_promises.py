"""Promise operations through ``Engine.apply`` (PROTOCOL.md §2.1-2.6)."""

from __future__ import annotations

from tests.engine.harness import Harness, R, T, executes, unblocks


def test_get_missing_is_404() -> None:
    h = Harness()
    assert h.call("promise.get", {"id": "nope"}) == (404, "Promise not found")


def test_create_plain_promise() -> None:
    h = Harness()
    p = h.create("p", 5_000, {"k": "v"}, param={"headers": {"a": "b"}, "data": "eA=="})
    assert p == {
        "id": "p",
        "state": "pending",
        "param": {"headers": {"a": "b"}, "data": "eA=="},
        "value": {},
        "tags": {"k": "v"},
        "timeoutAt": 5_000,
        "createdAt": 1_000,
    }
    assert h.get_promise("p") == p
    snap = h.snap()
    assert snap["tasks"] == [] and snap["promiseTimeouts"] == [] and snap["messages"] == []


def test_create_is_idempotent_and_ignores_the_new_payload() -> None:
    h = Harness()
    first = h.create("p", 5_000)
    again = h.create("p", 9_000, {"x": "y"}, now=2_000)
    assert again == first


def test_create_with_target_makes_a_task_timeout_and_execute() -> None:
    h = Harness()
    o = h.outcome(
        "promise.create", {"id": "p", "timeoutAt": 100_000, "tags": {"resonate:target": T}}
    )
    assert o.status == 200
    assert o.wake_outbox is True
    assert o.deadline == 1_000 + R
    snap = h.snap()
    assert snap["tasks"] == [{"id": "p", "state": "pending", "version": 0, "resumes": 0}]
    assert snap["taskTimeouts"] == [{"id": "p", "type": 0, "timeout": 1_000 + R}]
    assert snap["promiseTimeouts"] == [{"id": "p", "timeout": 100_000}]
    assert executes(snap) == [(T, "p", 0)]
    assert snap["messages"][0]["message"]["head"] == {}


def test_create_already_timed_out() -> None:
    h = Harness()
    p = h.create("p", 500, {"resonate:target": T})
    assert (p["state"], p["createdAt"], p["settledAt"]) == ("rejected_timedout", 500, 500)
    snap = h.snap()
    assert snap["tasks"] == [{"id": "p", "state": "fulfilled", "version": 0, "resumes": 0}]
    assert snap["taskTimeouts"] == [] and snap["messages"] == [] and snap["promiseTimeouts"] == []


def test_timer_promise_resolves_when_born_late_or_timed_out() -> None:
    h = Harness()
    assert h.create("t1", 1_000, {"resonate:timer": "true"})["state"] == "resolved"
    assert h.create("t2", 800, {"resonate:timer": "TRUE"})["state"] == "rejected_timedout"
    h.create("t3", 2_000, {"resonate:timer": "true"})
    assert h.ok("promise.get", {"id": "t3"}, 2_000)["promise"]["state"] == "resolved"


def test_delay_defers_the_first_execute() -> None:
    h = Harness()
    tags = {"resonate:target": T, "resonate:delay": "50000"}
    o = h.outcome("promise.create", {"id": "d", "timeoutAt": 1_000_000, "tags": tags})
    assert o.wake_outbox is False
    assert o.deadline == 50_000
    snap = h.snap()
    assert snap["messages"] == []
    assert snap["taskTimeouts"] == [{"id": "d", "type": 0, "timeout": 50_000}]
    h.tick(49_999)
    assert h.snap()["messages"] == []
    h.tick(50_000)
    snap = h.snap()
    assert executes(snap) == [(T, "d", 0)]
    assert snap["taskTimeouts"] == [{"id": "d", "type": 0, "timeout": 50_000 + R}]


def test_delay_in_the_past_behaves_as_without() -> None:
    h = Harness()
    h.create("d", 1_000_000, {"resonate:target": T, "resonate:delay": "+1000"})
    snap = h.snap()
    assert executes(snap) == [(T, "d", 0)]
    assert snap["taskTimeouts"] == [{"id": "d", "type": 0, "timeout": 1_000 + R}]


def test_settle() -> None:
    h = Harness()
    h.create("p")
    body = h.ok(
        "promise.settle", {"id": "p", "state": "rejected", "value": {"data": "ZXJy"}}, 2_000
    )
    assert body["promise"]["state"] == "rejected"
    assert body["promise"]["value"] == {"data": "ZXJy"}
    assert body["promise"]["settledAt"] == 2_000
    # Settling again is a no-op success whatever is asked.
    again = h.ok("promise.settle", {"id": "p", "state": "resolved"}, 3_000)
    assert again == body


def test_settle_missing_is_404() -> None:
    h = Harness()
    assert h.call("promise.settle", {"id": "x", "state": "resolved"}) == (404, "Promise not found")


def test_settle_after_deadline_times_out_first() -> None:
    h = Harness()
    h.create("p", 2_000)
    body = h.ok("promise.settle", {"id": "p", "state": "resolved"}, 2_000)
    assert (body["promise"]["state"], body["promise"]["settledAt"]) == ("rejected_timedout", 2_000)


def test_target_less_promise_times_out_lazily() -> None:
    h = Harness()
    h.create("p", 2_000)
    h.tick(5_000)
    assert h.snap()["promises"][0]["state"] == "pending"
    assert h.ok("promise.search", {}, 5_000)["promises"][0]["state"] == "pending"
    assert h.get_promise("p")["state"] == "rejected_timedout"
    assert h.get_promise("p")["settledAt"] == 2_000


def test_settle_fulfills_the_task_in_any_state() -> None:
    h = Harness()
    h.task("p")
    h.acquire("p")
    h.settle("p")
    snap = h.snap()
    assert snap["tasks"] == [{"id": "p", "state": "fulfilled", "version": 1, "resumes": 0}]
    assert snap["taskTimeouts"] == [] and snap["promiseTimeouts"] == []


def test_listener_gets_an_unblock_on_settle() -> None:
    h = Harness()
    h.create("p")
    addr = "poll://uni@clients/c1"
    body = h.ok("promise.register_listener", {"awaited": "p", "address": addr})
    assert body["promise"]["id"] == "p"
    h.ok("promise.register_listener", {"awaited": "p", "address": addr})
    assert h.snap()["listeners"] == [{"id": "p", "address": addr}]
    o = h.outcome("promise.settle", {"id": "p", "state": "resolved"})
    assert o.wake_outbox is True
    snap = h.snap()
    assert snap["listeners"] == []
    assert unblocks(snap) == [(addr, "p")]
    assert snap["messages"][0]["message"]["data"]["promise"]["state"] == "resolved"


def test_listener_on_settled_promise_does_nothing() -> None:
    h = Harness()
    h.create("p")
    h.settle("p")
    body = h.ok("promise.register_listener", {"awaited": "p", "address": "poll://any@g"})
    assert body["promise"]["state"] == "resolved"
    snap = h.snap()
    assert snap["listeners"] == [] and snap["messages"] == []


def test_listener_on_missing_promise_is_404() -> None:
    h = Harness()
    got = h.call("promise.register_listener", {"awaited": "x", "address": "poll://any@g"})
    assert got == (404, "Awaited promise not found")


def test_register_callback_errors() -> None:
    h = Harness()
    data = {"awaited": "a.1", "awaiter": "a"}
    assert h.call("promise.register_callback", data) == (404, "Awaited promise not found")
    h.create("a.1")
    assert h.call("promise.register_callback", data) == (422, "Awaiter promise not found")
    h.create("a")
    assert h.call("promise.register_callback", data) == (
        422,
        "Awaiter promise has no resonate:target tag",
    )


def test_register_callback_both_pending() -> None:
    h = Harness()
    h.create("a.1")
    h.task("a")
    body = h.ok("promise.register_callback", {"awaited": "a.1", "awaiter": "a"})
    assert body["promise"]["id"] == "a.1"
    h.ok("promise.register_callback", {"awaited": "a.1", "awaiter": "a"})
    assert h.snap()["callbacks"] == [{"awaiter": "a", "awaited": "a.1"}]


def test_register_callback_on_settled_awaited_records_a_ready_callback() -> None:
    h = Harness()
    h.create("a.1")
    h.create("a.2")
    h.settle("a.1")
    h.settle("a.2")
    h.task("a")
    for awaited in ("a.1", "a.2", "a.1"):
        h.ok("promise.register_callback", {"awaited": awaited, "awaiter": "a"})
    assert h.get_task("a")["resumes"] == 2  # one per distinct awaited, §0.1 item 5
    assert h.snap()["callbacks"] == []  # ready callbacks are not in the snapshot


def test_register_callback_on_settled_awaited_resumes_a_suspended_awaiter() -> None:
    h = Harness()
    h.create("a.1")
    h.create("a.2")
    h.task("a")
    h.acquire("a")
    assert h.suspend("a", 1, "a.2") == (200, {})
    h.settle("a.1", now=2_000)
    h.ok("promise.register_callback", {"awaited": "a.1", "awaiter": "a"}, 3_000)
    assert h.get_task("a") == {"id": "a", "state": "pending", "version": 1, "resumes": 0}
    snap = h.snap()
    assert executes(snap) == [(T, "a", 1)]
    assert snap["taskTimeouts"] == [{"id": "a", "type": 0, "timeout": 3_000 + R}]


def test_register_callback_with_halted_awaiter_does_nothing() -> None:
    h = Harness()
    h.create("a.1")
    h.settle("a.1")
    h.task("a")
    h.ok("task.halt", {"id": "a"})
    h.ok("promise.register_callback", {"awaited": "a.1", "awaiter": "a"})
    assert h.get_task("a")["resumes"] == 0


def test_search_filters_and_pages() -> None:
    h = Harness()
    for i in range(5):
        h.create(f"p{i}", tags={"group": "even" if i % 2 == 0 else "odd"})
    h.settle("p4")
    page = h.ok("promise.search", {"limit": 2})
    assert [p["id"] for p in page["promises"]] == ["p0", "p1"]
    assert page["cursor"] == "p1"
    page = h.ok("promise.search", {"limit": 2, "cursor": "p1"})
    assert [p["id"] for p in page["promises"]] == ["p2", "p3"]
    page = h.ok("promise.search", {"limit": 2, "cursor": "p3"})
    assert [p["id"] for p in page["promises"]] == ["p4"]
    assert "cursor" not in page
    evens = h.ok("promise.search", {"tags": {"group": "even"}, "state": "pending"})
    assert [p["id"] for p in evens["promises"]] == ["p0", "p2"]
    assert h.ok("promise.search", {"tags": {}})["promises"][4]["state"] == "resolved"


def test_search_default_limit_is_100() -> None:
    h = Harness()
    for i in range(101):
        h.create(f"p{i:03}")
    page = h.ok("promise.search", {})
    assert len(page["promises"]) == 100 and page["cursor"] == "p099"


def test_unknown_operation_and_disabled_debug() -> None:
    h = Harness(debug=False)
    assert h.call("promise.nope", {}) == (400, "Unknown operation: promise.nope")
    assert h.call("debug.nope", {}) == (400, "Unknown operation: debug.nope")
    for kind in ("debug.start", "debug.stop", "debug.reset", "debug.tick", "debug.snap"):
        assert h.call(kind, {"time": 1}) == (403, "Debug operations are disabled")


def test_validation_errors_come_back_as_outcomes() -> None:
    h = Harness()
    assert h.call("promise.create", {"id": "", "timeoutAt": 1}) == (400, "Promise ID is required")
    status, message = h.call("promise.create", {"id": "a", "timeoutAt": 1.5})
    assert status == 400 and message.startswith("Invalid request: ")
