"""The authorization table and the whole-segment prefix rule (sustain.server.access).

The same rules over a real server, kind by kind: tests/server/test_http_tenancy.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sustain.engine.responses import PreloadData
from sustain.protocol.records import Promise, Value
from sustain.protocol.requests import KINDS
from sustain.server.access import (
    EVERYTHING,
    TOUCHES,
    allows,
    allows_group,
    covers,
    matches,
    redact,
    scope_of,
    touches,
)


@pytest.mark.parametrize(
    ("prefix", "name", "expected"),
    [
        ("tA-", "tA-t1", True),
        ("tA-", "tA-", True),
        ("tA-", "tA", False),
        ("org.teamA", "org.teamA", True),
        ("org.teamA", "org.teamA-x", True),
        ("org.teamA", "org.teamA.1", True),
        ("org.teamA", "org.teamA:1", True),
        ("org.teamA", "org.teamA_1", True),
        ("org.teamA", "org.teamAB", False),
        ("org.teamA", "org.teamA2", False),
        ("org.teamA", "org.teamB-x", False),
        ("org.", "org.teamB", True),
        ("acme", "acmé", False),  # a letter is a letter, ASCII or not
        ("", "anything", True),
    ],
)
def test_whole_segment_matching(prefix: str, name: str, expected: bool) -> None:
    assert matches(prefix, name) is expected


@pytest.mark.parametrize(
    ("prefix", "head", "expected"),
    [
        ("tA-", "tA-", True),  # anything after a separator stays inside
        ("tA", "tA-s.", True),
        ("tA", "tA", False),  # "tA" + digits is another tenant's "tA17..."
        ("tA", "tA1", False),
        ("tA-", "tA", False),
        ("tA-", "", False),
        ("", "", True),
    ],
)
def test_template_heads(prefix: str, head: str, expected: bool) -> None:
    assert covers(prefix, head) is expected


def test_scopes() -> None:
    assert scope_of({"role": "Admin", "prefix": "x"}) == ""
    assert scope_of({"role": "user", "prefix": "x"}) == "x"
    assert scope_of({"prefix": ""}) == ""
    assert scope_of({"prefix": 1}) is None
    assert scope_of({}) is None


def test_every_protocol_kind_is_in_the_table_or_needs_everything() -> None:
    for kind in KINDS:
        if kind.startswith("debug."):
            assert kind not in TOUCHES
            assert list(touches(kind, {})) == [EVERYTHING]
        else:
            assert kind in TOUCHES, kind
    assert list(touches("no.such", {"id": "a"})) == [EVERYTHING]


TARGET = "poll://any@G/w"


@pytest.mark.parametrize(
    ("kind", "data", "expected"),
    [
        ("promise.get", {"id": "I"}, [("id", "I")]),
        (
            "promise.create",
            {"id": "I", "tags": {"resonate:origin": "O", "resonate:branch": "B",
                                 "resonate:parent": "P", "resonate:target": TARGET}},
            [("id", "I"), ("id", "O"), ("id", "B"), ("id", "P"), ("group", "G")],
        ),
        ("promise.create", {"id": "I", "tags": {"resonate:target": "http://h/x"}}, [("id", "I")]),
        ("promise.settle", {"id": "I"}, [("id", "I")]),
        ("promise.register_callback", {"awaited": "A", "awaiter": "W"}, [("id", "A"), ("id", "W")]),
        ("promise.register_listener", {"awaited": "A", "address": TARGET},
         [("id", "A"), ("group", "G")]),
        ("task.create", {"action": {"data": {"id": "I", "tags": {"resonate:target": TARGET}}}},
         [("id", "I"), ("group", "G")]),
        ("task.fulfill", {"id": "T", "action": {"data": {"id": "I"}}}, [("id", "T"), ("id", "I")]),
        ("task.suspend", {"id": "T", "actions": [{"data": {"awaited": "A", "awaiter": "W"}},
                                                {"data": {"awaited": "A2", "awaiter": "W"}}]},
         [("id", "T"), ("id", "A"), ("id", "W"), ("id", "A2"), ("id", "W")]),
        ("task.fence", {"id": "T", "action": {"kind": "promise.settle", "data": {"id": "I"}}},
         [("id", "T"), ("id", "I")]),
        ("task.fence", {"id": "T", "action": {"kind": "promise.create", "data": {
            "id": "I", "tags": {"resonate:branch": "B", "resonate:target": TARGET}}}},
         [("id", "T"), ("id", "I"), ("id", "B"), ("group", "G")]),
        ("task.heartbeat", {"tasks": [{"id": "T1"}, {"id": 3}, "x", {"id": "T2"}]},
         [("id", "T1"), ("id", "T2")]),
        ("schedule.create", {"id": "S", "promiseId": "{{.id}}.{{.timestamp}}",
                             "promiseTags": {"resonate:target": TARGET}},
         [("id", "S"), ("template", "S."), ("group", "G")]),
        ("schedule.create", {"id": "S", "promiseId": "x-{{.id}}"}, [("id", "S"), ("id", "x-S")]),
        ("schedule.delete", {"id": "S"}, [("id", "S")]),
        ("promise.search", {}, [EVERYTHING]),
        # the derived id I~retry-<n> lies in every scope that matches I
        ("sustain.retry", {"id": "I"}, [("id", "I")]),
        ("sustain.retry", {"id": "I~retry-2"}, [("id", "I~retry-2"), ("id", "I")]),
        ("sustain.retry", {"id": "I", "newId": "N"}, [("id", "I"), ("id", "N")]),
    ],
)  # fmt: skip
def test_what_each_kind_touches(kind: str, data: dict[str, Any], expected: list[Any]) -> None:
    assert list(touches(kind, data)) == expected


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("promise.get", {}),
        ("promise.get", {"id": 5}),
        ("promise.register_callback", {"awaited": None}),
        ("schedule.create", {"cron": "x"}),
        ("task.create", {"action": "x"}),
        ("task.create", {"action": {"data": []}}),
        ("task.create", {"action": {"data": {"id": 3, "tags": "x"}}}),
        ("task.suspend", {"actions": "x"}),
        ("task.heartbeat", {"pid": "p", "tasks": "nope"}),
        ("promise.create", {"id": "a-1", "tags": {"resonate:target": "not an address"}}),
    ],
)
def test_missing_or_mistyped_fields_touch_nothing(kind: str, data: dict[str, Any]) -> None:
    # The operation then fails its own validation (400), not authorization.
    assert allows({"prefix": "a"}, kind, data)


def test_one_foreign_name_forbids_the_operation() -> None:
    data = {"id": "a-1", "tags": {"resonate:target": "poll://any@a-g"}}
    assert allows({"prefix": "a-"}, "promise.create", data)
    foreign = json.loads(json.dumps(data).replace("a-g", "b-g"))
    assert not allows({"prefix": "a-"}, "promise.create", foreign)
    assert allows({"role": "admin"}, "promise.create", foreign)
    assert not allows({}, "promise.create", data)


def test_groups() -> None:
    assert allows_group({"prefix": "tA-"}, "tA-workers")
    assert not allows_group({"prefix": "tA"}, "tAB")
    assert allows_group({"prefix": ""}, "default")
    assert not allows_group({"sub": "x"}, "default")


def _promise(id: str) -> Promise:
    return Promise(id, "pending", Value(), Value(), {}, timeoutAt=1, createdAt=0)


def test_preloads_keep_only_the_scope() -> None:
    data = PreloadData([_promise("a-1"), _promise("b-1"), _promise("a-2")])
    kept = redact("a-", data)
    assert isinstance(kept, PreloadData)
    assert [p.id for p in kept.preload] == ["a-1", "a-2"]
    assert redact("", data) is data
    assert redact("a-", "not a preload") == "not a preload"
