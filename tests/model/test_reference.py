"""Hand-checked scenarios from PROTOCOL.md run on the reference model alone.

These pin the model to the spec before it is used as the differential oracle: each expected
value below is read off the spec text (section cited), not off the model.
"""

from __future__ import annotations

from typing import Any

from tests.model.reference import ReferenceModel

T = 1_000_000_000
TARGET = "poll://any@default"
R = 30000


def _model() -> ReferenceModel:
    return ReferenceModel(retry_timeout=R)


def _ok(m: ReferenceModel, kind: str, data: dict[str, Any], now: int) -> Any:
    status, out = m.apply(kind, data, now, now)
    assert status == 200, (kind, status, out)
    return out


def _snap(m: ReferenceModel) -> dict[str, Any]:
    return _ok(m, "debug.snap", {}, 0)


def _execute(id: str, version: int, address: str = TARGET) -> dict[str, Any]:
    return {
        "address": address,
        "message": {
            "kind": "execute",
            "head": {},
            "data": {"task": {"id": id, "version": version}},
        },
    }


def test_end_to_end_example_of_section_10() -> None:
    m = _model()
    p = _ok(
        m,
        "promise.create",
        {
            "id": "foo",
            "timeoutAt": T + 3600000,
            "param": {"data": "eA=="},
            "tags": {"resonate:target": TARGET},
        },
        T,
    )["promise"]
    assert p == {
        "id": "foo",
        "state": "pending",
        "param": {"data": "eA=="},
        "value": {},
        "tags": {"resonate:target": TARGET},
        "timeoutAt": T + 3600000,
        "createdAt": T,
    }
    snap = _snap(m)
    assert snap["messages"] == [_execute("foo", 0)]
    assert snap["taskTimeouts"] == [{"id": "foo", "type": 0, "timeout": T + R}]
    assert snap["promiseTimeouts"] == [{"id": "foo", "timeout": T + 3600000}]

    acq = _ok(m, "task.acquire", {"id": "foo", "version": 0, "pid": "w1", "ttl": 60000}, T + 1)
    assert acq["task"] == {
        "id": "foo",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 60000,
        "pid": "w1",
    }
    assert acq["preload"] == []
    _ok(m, "task.heartbeat", {"pid": "w1", "tasks": [{"id": "foo", "version": 1}]}, T + 2)
    assert _snap(m)["taskTimeouts"] == [{"id": "foo", "type": 1, "timeout": T + 2 + 60000}]

    child = {
        "id": "foo.1",
        "timeoutAt": T + 3600000,
        "tags": {"resonate:origin": "foo", "resonate:parent": "foo", "resonate:branch": "foo"},
    }
    fence = _ok(
        m,
        "task.fence",
        {
            "id": "foo",
            "version": 1,
            "action": {"kind": "promise.create", "head": {}, "data": child},
        },
        T + 3,
    )
    assert fence["action"]["head"] == {"corrId": "c", "status": 200, "version": "2026-04-01"}
    assert fence["action"]["data"]["promise"]["id"] == "foo.1"
    assert fence["preload"] == []  # foo itself has no branch tag

    _ok(
        m,
        "promise.create",
        {"id": "foo.2", "timeoutAt": T + 3600000, "tags": {"resonate:target": TARGET}},
        T + 4,
    )
    cb = {
        "kind": "promise.register_callback",
        "head": {},
        "data": {"awaited": "foo.2", "awaiter": "foo"},
    }
    assert m.apply("task.suspend", {"id": "foo", "version": 1, "actions": [cb]}, T + 5) == (200, {})
    assert _snap(m)["callbacks"] == [{"awaiter": "foo", "awaited": "foo.2"}]

    _ok(m, "promise.settle", {"id": "foo.2", "state": "resolved", "value": {"data": "eQ=="}}, T + 6)
    task = _ok(m, "task.get", {"id": "foo"}, T + 7)["task"]
    assert task == {"id": "foo", "state": "pending", "version": 1, "resumes": 1}
    snap = _snap(m)
    assert _execute("foo", 1) in snap["messages"]
    assert snap["callbacks"] == []
    acq = _ok(m, "task.acquire", {"id": "foo", "version": 1, "pid": "w1", "ttl": 60000}, T + 8)
    assert acq["task"]["version"] == 2 and acq["task"]["resumes"] == 0

    _ok(m, "promise.register_listener", {"awaited": "foo", "address": "poll://uni@g/l"}, T + 9)
    out = _ok(
        m,
        "task.fulfill",
        {
            "id": "foo",
            "version": 2,
            "action": {
                "kind": "promise.settle",
                "head": {},
                "data": {"id": "foo", "state": "resolved", "value": {"data": "eg=="}},
            },
        },
        T + 10,
    )
    assert out["promise"]["state"] == "resolved" and out["promise"]["settledAt"] == T + 10
    snap = _snap(m)
    unblocks = [x for x in snap["messages"] if x["message"]["kind"] == "unblock"]
    assert [(u["address"], u["message"]["data"]["promise"]["id"]) for u in unblocks] == [
        ("poll://uni@g/l", "foo")
    ]
    assert [t["state"] for t in snap["tasks"]] == ["fulfilled", "fulfilled"]
    assert snap["taskTimeouts"] == [] and snap["listeners"] == []


def _acquired_with_children(m: ReferenceModel) -> None:
    for id in ("a", "a.1", "a.2"):
        _ok(
            m,
            "promise.create",
            {"id": id, "timeoutAt": T + 100000, "tags": {"resonate:target": TARGET}},
            T,
        )
    _ok(m, "task.acquire", {"id": "a", "version": 0, "pid": "p", "ttl": 1000}, T)


def _suspend(m: ReferenceModel, awaited: list[str], now: int) -> tuple[int, Any]:
    actions = [
        {"kind": "promise.register_callback", "head": {}, "data": {"awaited": x, "awaiter": "a"}}
        for x in awaited
    ]
    return m.apply("task.suspend", {"id": "a", "version": 1, "actions": actions}, now)


def test_suspend_on_a_settled_promise_answers_300_and_keeps_the_lease() -> None:
    m = _model()
    _acquired_with_children(m)
    _ok(m, "promise.settle", {"id": "a.1", "state": "rejected"}, T + 1)
    status, data = _suspend(m, ["a.2", "a.1"], T + 2)
    assert (status, data) == (300, {"preload": []})
    snap = _snap(m)
    assert snap["callbacks"] == []  # not even for the pending a.2
    assert snap["tasks"][0]["state"] == "acquired"
    assert snap["taskTimeouts"][0] == {"id": "a", "type": 1, "timeout": T + 1000}
    assert _suspend(m, ["a.9"], T + 3) == (422, "Awaited promise not found")


def test_register_callback_on_settled_awaited_resumes_a_suspended_task_without_resumes() -> None:
    m = _model()
    _acquired_with_children(m)
    assert _suspend(m, ["a.2"], T + 1) == (200, {})
    _ok(m, "promise.settle", {"id": "a.1", "state": "resolved"}, T + 2)
    _ok(m, "promise.register_callback", {"awaited": "a.1", "awaiter": "a"}, T + 3)
    task = _ok(m, "task.get", {"id": "a"}, T + 4)["task"]
    assert task == {"id": "a", "state": "pending", "version": 1, "resumes": 0}  # §0 item 3
    # §0.1 item 7: the unfired callback on a.2 outlives the resumption.
    assert _snap(m)["callbacks"] == [{"awaiter": "a", "awaited": "a.2"}]


def test_callback_on_an_awaiter_past_its_deadline_is_dropped() -> None:
    m = _model()
    _ok(
        m,
        "promise.create",
        {"id": "b", "timeoutAt": T + 10, "tags": {"resonate:target": TARGET}},
        T,
    )
    _ok(m, "promise.create", {"id": "b.1", "timeoutAt": T + 1000}, T)
    _ok(m, "promise.register_callback", {"awaited": "b.1", "awaiter": "b"}, T)
    _ok(m, "promise.settle", {"id": "b.1", "state": "resolved"}, T + 10)
    snap = _snap(m)
    assert snap["callbacks"] == []
    assert snap["tasks"] == [{"id": "b", "state": "pending", "version": 0, "resumes": 0}]
    assert snap["promises"][0]["state"] == "pending"  # settled later by its own timeout
    _ok(m, "debug.tick", {"time": T + 10}, T + 10)
    assert _snap(m)["promises"][0]["state"] == "rejected_timedout"


def test_delay_defers_the_first_execute_to_the_retry_timeout() -> None:
    m = _model()
    tags = {"resonate:target": TARGET, "resonate:delay": str(T + 5000)}
    _ok(m, "promise.create", {"id": "d", "timeoutAt": T + 60000, "tags": tags}, T)
    snap = _snap(m)
    assert snap["messages"] == []
    assert snap["taskTimeouts"] == [{"id": "d", "type": 0, "timeout": T + 5000}]
    _ok(m, "debug.tick", {"time": T + 5000}, T + 5000)
    snap = _snap(m)
    assert snap["messages"] == [_execute("d", 0)]
    assert snap["taskTimeouts"] == [{"id": "d", "type": 0, "timeout": T + 5000 + R}]
    # Past the delay already: behave as without it.
    _ok(m, "promise.create", {"id": "e", "timeoutAt": T + 60000, "tags": tags}, T + 6000)
    assert _snap(m)["messages"][-1] == _execute("e", 0)


def test_born_settled_timer_promise_and_lease_expiry() -> None:
    m = _model()
    out = _ok(
        m,
        "task.create",
        {
            "pid": "p",
            "ttl": 100,
            "action": {
                "kind": "promise.create",
                "head": {},
                "data": {
                    "id": "s",
                    "timeoutAt": T - 5,
                    "tags": {"resonate:target": TARGET, "resonate:timer": "true"},
                },
            },
        },
        T,
    )
    assert out["promise"]["state"] == "resolved"
    assert out["promise"]["createdAt"] == out["promise"]["settledAt"] == T - 5
    assert out["task"] == {"id": "s", "state": "fulfilled", "version": 0, "resumes": 0}
    out = _ok(
        m,
        "task.create",
        {
            "pid": "p",
            "ttl": 100,
            "action": {
                "kind": "promise.create",
                "head": {},
                "data": {"id": "l", "timeoutAt": T + 100000, "tags": {"resonate:target": TARGET}},
            },
        },
        T,
    )
    assert out["task"] == {
        "id": "l",
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 100,
        "pid": "p",
    }
    assert _snap(m)["messages"] == []
    _ok(m, "debug.tick", {"time": T + 100}, T + 100)
    snap = _snap(m)
    assert snap["tasks"][0] == {"id": "l", "state": "pending", "version": 1, "resumes": 0}
    assert snap["taskTimeouts"] == [{"id": "l", "type": 0, "timeout": T + 100 + R}]
    assert snap["messages"] == [_execute("l", 1)]


def test_schedule_catch_up_fires_every_missed_occurrence() -> None:
    m = _model()
    t0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    s = _ok(
        m,
        "schedule.create",
        {
            "id": "s0",
            "cron": "* * * * *",
            "promiseId": "{{.id}}.{{.timestamp}}",
            "promiseTimeout": 100000,
            "promiseTags": {"resonate:target": TARGET},
        },
        t0,
    )["schedule"]
    first = 1_700_000_040_000  # the next whole minute
    assert s["nextRunAt"] == first and "lastRunAt" not in s
    _ok(m, "debug.tick", {"time": first + 150000}, first + 150000)  # 3 occurrences due
    ids = [p["id"] for p in _snap(m)["promises"]]
    assert ids == [f"s0.{first}", f"s0.{first + 60000}", f"s0.{first + 120000}"]
    snap = _snap(m)
    # The oldest is already past firedAt + promiseTimeout at tick time: born timed out.
    assert snap["promises"][0]["state"] == "rejected_timedout"
    assert snap["promises"][0]["createdAt"] == first
    assert snap["promises"][0]["settledAt"] == first + 100000
    assert snap["promises"][1]["state"] == "pending"
    assert snap["promises"][1]["tags"]["resonate:prefix"] == f"s0.{first + 60000}"
    assert snap["taskTimeouts"][0] == {
        "id": f"s0.{first + 60000}",
        "type": 0,
        "timeout": first + 150000 + R,
    }
    got = _ok(m, "schedule.get", {"id": "s0"}, 0)["schedule"]
    assert got["lastRunAt"] == first + 120000 and got["nextRunAt"] == first + 180000


def test_fence_checks_order_and_errors() -> None:
    m = _model()
    _acquired_with_children(m)
    assert m.apply(
        "task.fence",
        {"id": "a", "version": 1, "action": {"kind": "promise.get", "data": {"id": "x"}}},
        T,
    ) == (400, "Invalid fence action kind")
    assert m.apply(
        "task.fence",
        {
            "id": "a",
            "version": 9,
            "action": {"kind": "promise.settle", "data": {"id": "a.1", "state": "resolved"}},
        },
        T,
    ) == (409, "Version mismatch")
    status, data = m.apply(
        "task.fence",
        {
            "id": "a",
            "version": 1,
            "action": {"kind": "promise.settle", "data": {"id": "nope", "state": "resolved"}},
        },
        T,
    )
    assert status == 200 and data["action"]["head"]["status"] == 404
    assert data["action"]["data"] == "Promise not found"


def test_errors_and_unknown_kind() -> None:
    m = _model()
    assert m.apply("promise.get", {"id": "x"}, T) == (404, "Promise not found")
    assert m.apply("promise.gets", {}, T) == (400, "Unknown operation: promise.gets")
    assert m.apply("promise.search", {"limit": 0}, T) == (400, "Limit must be a positive integer")
    assert m.apply("debug.tick", {"time": 5}, T, 6) == (
        400,
        "resonate:debug_time must equal data.time",
    )
    assert m.apply("task.halt", {"id": "x"}, T) == (404, "Task not found")


def test_the_model_answers_every_generated_sequence_without_raising() -> None:
    """The differential generators on the model alone: no exception, every kind reachable."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from tests.model.generators import GENERATORS, choose_kind, mutate

    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, derandomize=True, database=None)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        m = _model()
        now = T
        for _ in range(30):
            if data.draw(st.integers(0, 9)) == 0:
                now += data.draw(st.integers(0, 50)) * 1000
                assert m.apply("debug.tick", {"time": now}, now, now) == (200, [])
                continue
            kind = choose_kind(data.draw, m)
            req = GENERATORS[kind][1](data.draw, m, now)
            if data.draw(st.integers(0, 19)) == 0:
                req = mutate(data.draw, req)
            status, _ = m.apply(kind, req, now, now)
            assert status in (200, 300, 400, 404, 409, 422), (kind, req, status)
            if status < 300:
                seen.add(kind)

    run()
    assert seen == set(GENERATORS)
