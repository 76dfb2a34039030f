"""Request parsing and validation: every 400 message of the catalogue, first check wins."""

from __future__ import annotations

from typing import Any

import pytest

from sustain.protocol.errors import ProtocolError
from sustain.protocol.requests import (
    FenceAction,
    PromiseCreate,
    PromiseSettle,
    TaskFence,
    parse,
    parse_fence_action,
)

T = "poll://any@g"


def cb(awaited: str, awaiter: str) -> dict[str, Any]:
    return {
        "kind": "promise.register_callback",
        "head": {},
        "data": {"awaited": awaited, "awaiter": awaiter},
    }


def create(id: str = "a", timeout_at: int = 10, **tags: str) -> dict[str, Any]:
    return {"id": id, "timeoutAt": timeout_at, "tags": tags}


def task_create(data: dict[str, Any], pid: str = "p", ttl: int = 1) -> dict[str, Any]:
    return {
        "pid": pid,
        "ttl": ttl,
        "action": {"kind": "promise.create", "head": None, "data": data},
    }


def with_target(**tags: str) -> dict[str, str]:
    return {"resonate:target": T, **tags}


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("promise.get", {"id": ""}, "Promise ID is required"),
    ("promise.create", {"id": "", "timeoutAt": -1}, "Promise ID is required"),
    (
        "promise.create",
        {"id": "a\x00", "timeoutAt": -1},
        "TimeoutAt must be a non-negative integer",
    ),
    ("promise.create", {"id": "a\x00", "timeoutAt": 1}, "Promise ID must not contain null bytes"),
    (
        "promise.create",
        create("b", **{"resonate:origin": "a"}),
        "Promise ID must be prefixed by resonate:origin",
    ),
    (
        "promise.create",
        create("ab", **{"resonate:origin": "a"}),
        "Promise ID must be prefixed by resonate:origin",
    ),
    (
        "promise.create",
        create("a.b", **{"resonate:branch": "c"}),
        "Promise ID must be prefixed by resonate:branch",
    ),
    (
        "promise.create",
        create("a.b", **{"resonate:parent": "c"}),
        "Promise ID must be prefixed by resonate:parent",
    ),
    (
        "promise.create",
        create("a", **{"resonate:prefix": "x.y"}),
        "resonate:prefix must not contain '.'",
    ),
    (
        "promise.create",
        create(**with_target(**{"resonate:delay": "-1"})),
        "resonate:delay must be a non-negative integer",
    ),
    (
        "promise.create",
        create(**with_target(**{"resonate:delay": "1.5"})),
        "resonate:delay must be a non-negative integer",
    ),
    (
        "promise.create",
        create(**with_target(**{"resonate:delay": ""})),
        "resonate:delay must be a non-negative integer",
    ),
    (
        "promise.create",
        create(**with_target(**{"resonate:delay": str(2**63)})),
        "resonate:delay must be a non-negative integer",
    ),
    (
        "promise.create",
        create(**with_target(**{"resonate:delay": "10"})),
        "resonate:delay must be less than timeoutAt",
    ),
    (
        "promise.create",
        create(**{"resonate:delay": "5"}),
        "resonate:delay requires a resonate:target tag",
    ),
    ("promise.create", create(**{"resonate:target": "nowhere"}), "Invalid resonate:target address"),
    # Tag checks in §0.1's order: origin before branch before parent before prefix.
    (
        "promise.create",
        create("x", **{"resonate:parent": "p", "resonate:origin": "o"}),
        "Promise ID must be prefixed by resonate:origin",
    ),
    ("promise.settle", {"id": "", "state": "resolved"}, "Promise ID is required"),
    ("promise.register_callback", {"awaited": "", "awaiter": ""}, "Awaited promise ID is required"),
    (
        "promise.register_callback",
        {"awaited": "a", "awaiter": ""},
        "Awaiter promise ID is required",
    ),
    (
        "promise.register_callback",
        {"awaited": "a", "awaiter": "a"},
        "Awaited and awaiter must be different promises",
    ),
    (
        "promise.register_callback",
        {"awaited": "a.1", "awaiter": "b"},
        "Awaiter and awaited must belong to the same origin",
    ),
    ("promise.register_listener", {"awaited": "", "address": ""}, "Awaited promise ID is required"),
    ("promise.register_listener", {"awaited": "a", "address": ""}, "Address is required"),
    ("promise.register_listener", {"awaited": "a", "address": "bad"}, "Invalid listener address"),
    ("promise.search", {"limit": 0}, "Limit must be a positive integer"),
    ("promise.search", {"limit": 1001}, "Invalid 'limit' — must be between 1 and 1000"),
    ("task.search", {"limit": -5}, "Limit must be a positive integer"),
    ("schedule.search", {"limit": 5000}, "Invalid 'limit' — must be between 1 and 1000"),
    ("task.get", {"id": ""}, "Task ID is required"),
    ("task.create", task_create(create(**with_target()), pid=""), "Process ID is required"),
    ("task.create", task_create(create(**with_target()), ttl=0), "TTL must be a positive integer"),
    ("task.create", task_create(create("")), "Promise ID is required"),
    ("task.create", task_create(create()), "Action must have a resonate:target tag"),
    (
        "task.create",
        task_create(create(**{"resonate:delay": "5"})),
        "resonate:delay requires a resonate:target tag",
    ),
    (
        "task.create",
        task_create(create(**with_target(**{"resonate:delay": "5"}))),
        "Action must not have a resonate:delay tag",
    ),
    (
        "task.create",
        task_create(create(**{"resonate:target": "bad"})),
        "Invalid resonate:target address",
    ),
    ("task.acquire", {"id": "", "version": -1, "pid": "", "ttl": 0}, "Task ID is required"),
    (
        "task.acquire",
        {"id": "a", "version": -1, "pid": "", "ttl": 0},
        "Version must be a non-negative integer",
    ),
    ("task.acquire", {"id": "a", "version": 0, "pid": "", "ttl": 0}, "Process ID is required"),
    (
        "task.acquire",
        {"id": "a", "version": 0, "pid": "p", "ttl": 0},
        "TTL must be a positive integer",
    ),
    ("task.release", {"id": "a", "version": -1}, "Version must be a non-negative integer"),
    (
        "task.fulfill",
        {
            "id": "a",
            "version": 0,
            "action": {"kind": "k", "head": {}, "data": {"id": "", "state": "resolved"}},
        },
        "Promise ID is required",
    ),
    (
        "task.fulfill",
        {
            "id": "a",
            "version": 0,
            "action": {"kind": "k", "head": {}, "data": {"id": "b", "state": "resolved"}},
        },
        "Action ID must match the task ID",
    ),
    ("task.suspend", {"id": "a", "version": 0, "actions": []}, "Actions array cannot be empty"),
    (
        "task.suspend",
        {"id": "a", "version": 0, "actions": [cb("a.1", "a"), cb("", "a")]},
        "Awaited promise ID is required",
    ),
    (
        "task.suspend",
        {"id": "a", "version": 0, "actions": [cb("a", "a")]},
        "Awaited and awaiter must be different promises",
    ),
    (
        "task.suspend",
        {"id": "a", "version": 0, "actions": [cb("b", "a")]},
        "Awaiter and awaited must belong to the same origin",
    ),
    (
        "task.suspend",
        {"id": "a", "version": 0, "actions": [cb("a.1", "a.2")]},
        "All action awaiter IDs must match the task ID",
    ),
    (
        "task.fence",
        {"id": "", "version": 0, "action": {"kind": "x", "data": {}}},
        "Task ID is required",
    ),
    (
        "task.fence",
        {"id": "a", "version": -1, "action": {"kind": "x", "data": {}}},
        "Version must be a non-negative integer",
    ),
    (
        "task.fence",
        {"id": "a", "version": 0, "action": {"kind": "x", "data": {"id": "a"}}},
        "Action ID must not equal the task ID",
    ),
    ("task.heartbeat", {"pid": "", "tasks": []}, "Process ID is required"),
    ("task.heartbeat", {"pid": "p", "tasks": []}, "Tasks array must not be empty"),
    ("task.halt", {"id": ""}, "Task ID is required"),
    ("task.continue", {"id": ""}, "Task ID is required"),
    ("schedule.get", {"id": ""}, "Schedule ID is required"),
    ("schedule.delete", {"id": ""}, "Schedule ID is required"),
    (
        "schedule.create",
        {"id": "", "cron": "", "promiseId": "", "promiseTimeout": -1},
        "Schedule ID is required",
    ),
    (
        "schedule.create",
        {"id": "s", "cron": "", "promiseId": "", "promiseTimeout": -1},
        "Cron expression is required",
    ),
    (
        "schedule.create",
        {"id": "s", "cron": "* * * * *", "promiseId": "", "promiseTimeout": -1},
        "Promise ID template is required",
    ),
    (
        "schedule.create",
        {"id": "s", "cron": "* * * * *", "promiseId": "p", "promiseTimeout": -1},
        "Promise timeout must be a non-negative integer",
    ),
    (
        "schedule.create",
        {"id": "s", "cron": "* * * * *", "promiseId": "p", "promiseTimeout": 1},
        "promiseTags must include a resonate:target tag",
    ),
    (
        "schedule.create",
        {
            "id": "s",
            "cron": "* * * * *",
            "promiseId": "p",
            "promiseTimeout": 1,
            "promiseTags": {"resonate:target": "x"},
        },
        "Invalid resonate:target address",
    ),
    ("debug.tick", {}, "Missing or invalid 'time' field"),
    ("debug.tick", {"time": 1.5}, "Missing or invalid 'time' field"),
    ("debug.tick", {"time": "1"}, "Missing or invalid 'time' field"),
]


@pytest.mark.parametrize(("kind", "data", "message"), CASES)
def test_validation_messages(kind: str, data: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse(kind, data)
    assert (e.value.status, e.value.message) == (400, message)


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("promise.get", {}),
        ("promise.get", {"id": 5}),
        ("promise.create", {"id": "a", "timeoutAt": 1.0}),
        ("promise.create", {"id": "a", "timeoutAt": True}),
        ("promise.create", {"id": "a", "timeoutAt": "1"}),
        ("promise.create", {"id": "a", "timeoutAt": 2**64}),
        ("promise.create", {"id": "a", "timeoutAt": 1, "tags": {"k": 1}}),
        ("promise.create", {"id": "a", "timeoutAt": 1, "tags": []}),
        ("promise.create", {"id": "a", "timeoutAt": 1, "param": {"data": {"x": 1}}}),
        ("promise.create", {"id": "a", "timeoutAt": 1, "param": {"headers": {"h": None}}}),
        ("promise.settle", {"id": "a", "state": "pending"}),
        ("promise.settle", {"id": "a", "state": "rejected_timedout"}),
        ("promise.settle", {"id": "a", "state": "resolved", "value": {"data": 1}}),
        ("promise.search", {"state": "done"}),
        ("task.create", {"pid": "p", "ttl": 1, "action": {"kind": "k", "data": create()}}),
        ("task.create", {"pid": "p", "ttl": 1, "action": {"head": {}, "data": create()}}),
        ("task.suspend", {"id": "a", "version": 0, "actions": [{"kind": "k", "data": {}}]}),
        ("task.fence", {"id": "a", "version": 0, "action": {"data": {}}}),
        ("task.heartbeat", {"pid": "p", "tasks": [{"id": "a"}]}),
        ("task.search", {"state": "running"}),
    ],
)
def test_parse_errors(kind: str, data: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as e:
        parse(kind, data)
    assert e.value.status == 400
    assert e.value.message.startswith("Invalid request: ")


def test_unknown_kind() -> None:
    with pytest.raises(ProtocolError) as e:
        parse("promise.frobnicate", {})
    assert (e.value.status, e.value.message) == (400, "Unknown operation: promise.frobnicate")


def test_valid_create_keeps_fields_and_ignores_unknown_ones() -> None:
    r = parse(
        "promise.create",
        {**create("a.1", 50, **with_target(**{"resonate:delay": "+7"})), "extra": 1},
    )
    assert isinstance(r, PromiseCreate)
    assert (r.id, r.timeoutAt, r.tags_or_empty["resonate:delay"]) == ("a.1", 50, "+7")


def test_head_may_be_null_but_must_be_present() -> None:
    assert parse("task.create", task_create(create(**with_target()))).action.head is None


def test_heartbeat_entries_with_empty_ids_are_accepted() -> None:
    parse(
        "task.heartbeat",
        {"pid": "p", "tasks": [{"id": "a", "version": 1}, {"id": "a.2", "version": 0}]},
    )


def test_fence_outer_parse_defers_the_inner_action() -> None:
    r = parse("task.fence", {"id": "a", "version": 1, "action": {"kind": "nope", "data": 42}})
    assert isinstance(r, TaskFence)
    with pytest.raises(ProtocolError) as e:
        parse_fence_action(r.action)
    assert e.value.message == "Invalid fence action kind"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (FenceAction("promise.create", {"id": "b"}), "Invalid action data: "),
        (FenceAction("promise.create", 42), "Invalid action data: "),
        (FenceAction("promise.settle", {"id": "b", "state": "nope"}), "Invalid action data: "),
        (FenceAction("promise.create", create("", 5)), "Promise ID is required"),
        (
            FenceAction("promise.create", create("b", 5, **{"resonate:target": "x"})),
            "Invalid resonate:target address",
        ),
        (FenceAction("promise.settle", {"id": "", "state": "resolved"}), "Promise ID is required"),
    ],
)
def test_fence_inner_errors(action: FenceAction, message: str) -> None:
    with pytest.raises(ProtocolError) as e:
        parse_fence_action(action)
    assert e.value.status == 400
    assert e.value.message.startswith(message)


def test_fence_inner_success() -> None:
    inner = parse_fence_action(FenceAction("promise.settle", {"id": "b", "state": "rejected"}))
    assert inner == PromiseSettle(id="b", state="rejected")
