"""The call graph behind ``sustain tree`` and the CLI's value encoding (pure parts)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sustain.cli.errors import CliError
from sustain.cli.invocation import group_of, target_address
from sustain.cli.payloads import action, kwarg, tags, user_json, user_value
from sustain.protocol import callgraph
from sustain.protocol.values import decode_data, encode_data


def _p(
    pid: str, created: int, parent: str | None = None, func: str | None = None, **tags: str
) -> dict[str, Any]:
    all_tags = dict(tags)
    if parent is not None:
        all_tags["resonate:parent"] = parent
    param = {"data": encode_data({"func": func, "args": []})} if func else {}
    return {
        "id": pid,
        "state": "pending",
        "param": param,
        "value": {},
        "tags": all_tags,
        "timeoutAt": 10_000,
        "createdAt": created,
    }


def _ids(node: callgraph.CallNode) -> list[Any]:
    return [node.id, [_ids(c) for c in node.children]]


def test_children_by_parent_sorted_by_created_at() -> None:
    root = _p("r", 0, func="main")
    promises = [
        root,
        _p("r.2", 5, "r"),
        _p("r.1", 9, "r"),
        _p("r.1.1", 10, "r.1"),
        _p("r.3", 5, "r"),
    ]
    graph = callgraph.build(root, promises)
    assert _ids(graph) == ["r", [["r.2", []], ["r.3", []], ["r.1", [["r.1.1", []]]]]]


def test_unknown_or_self_parent_hangs_under_root() -> None:
    root = _p("r", 0)
    graph = callgraph.build(root, [_p("r.9", 1, "gone"), _p("r.8", 2, "r.8"), _p("r.7", 3)])
    assert _ids(graph) == ["r", [["r.9", []], ["r.8", []], ["r.7", []]]]


def test_parent_cycle_is_not_lost() -> None:
    root = _p("r", 0)
    graph = callgraph.build(root, [_p("r.a", 1, "r.b"), _p("r.b", 2, "r.a")])
    assert sorted(c.id for c in graph.children) == ["r.a", "r.b"]


def test_labels() -> None:
    def label(promise: dict[str, Any], *, top: bool = False) -> str:
        return callgraph.CallNode(promise, is_top=top).label

    assert label(_p("a", 0, func="f"), top=True) == "f"
    assert label(_p("a", 0), top=True) == ""
    assert label(_p("a", 0, func="f", **{"resonate:scope": "global"})) == "(rpc f)"
    assert label(_p("a", 0, func="f")) == "(rpc f)"  # an invocation, tags or not
    assert label(_p("a", 0, func="g", **{"resonate:scope": "local"})) == "(run g)"
    assert label(_p("a", 0, **{"resonate:timer": "true"})) == "(sleep)"
    assert label(_p("a", 0, **{"resonate:external": "true", "resonate:scope": "global"})) == (
        "(promise)"
    )
    assert label(_p("a", 0, **{"resonate:scope": "global"})) == "(promise)"
    assert label(_p("a", 0)) == "(promise)"
    assert label(_p("r:d0123456789abcdef", 0, "r", func="h", **{"resonate:scope": "global",
                 "resonate:target": "poll://any@g"})) == "(detached h)"  # fmt: skip
    assert label(_p("r:1", 0, "r", **{"resonate:scope": "global",
                 "resonate:target": "poll://any@g"})) == "(rpc)"  # fmt: skip


def test_link_records_hang_the_linked_call_under_its_caller() -> None:
    root = _p("a", 0, func="f")
    link = _p("a:2", 5, "a", **{"resonate:scope": "local", "sustain:link": "ext"})
    promises = [
        _p("a:1", 1, "a", func="s", **{"resonate:scope": "local"}),
        link,
        _p("ext", -100, "ext", func="g", **{"resonate:target": "poll://any@g"}),  # older
        _p("ext:1", 7, "ext", func="h", **{"resonate:scope": "local"}),
        _p("a:3", 9, "a", **{"resonate:timer": "true"}),
    ]
    graph = callgraph.build(root, promises)
    # the link itself is not drawn; the call sits where the link was made, not by its age
    assert _ids(graph) == ["a", [["a:1", []], ["ext", [["ext:1", []]]], ["a:3", []]]]
    assert [c.kind for c in graph.children] == ["run", "rpc", "sleep"]
    assert callgraph.link_of(link) == "ext"
    assert callgraph.link_of(root) is None


@pytest.mark.parametrize(
    "data",
    [
        "not base64!",
        base64.b64encode(b"\xff\xfe").decode(),
        encode_data("plain"),
        encode_data([1]),
        encode_data({"func": 3}),
        encode_data({"func": ""}),
    ],
)
def test_function_name_absent_when_undecodable(data: str) -> None:
    assert callgraph.function_name({"param": {"data": data}}) is None


def test_to_json_nests_promises() -> None:
    root = _p("r", 0)
    graph = callgraph.build(root, [_p("r.1", 1, "r")])
    assert graph.to_json() == {
        "id": "r",
        "kind": "root",
        "func": None,
        "promise": root,
        "children": [
            {"id": "r.1", "kind": "promise", "func": None, "promise": _p("r.1", 1, "r"),
             "children": []}
        ],
    }  # fmt: skip


def test_codec_round_trip() -> None:
    assert decode_data(encode_data("héllo")) == "héllo"
    assert json.loads(decode_data(encode_data({"a": 1})) or "") == {"a": 1}
    assert decode_data(5) is None


def test_value_option() -> None:
    assert user_value("--v", None) == {}
    assert user_value("--v", '{"ok": true}') == {"data": encode_data('{"ok": true}')}
    assert user_value("--v", "plain text") == {"data": encode_data('"plain text"')}
    assert user_value("--v", '{"headers": {"a": "b"}, "data": "MQ=="}', raw=True) == {
        "headers": {"a": "b"},
        "data": "MQ==",
    }
    with pytest.raises(CliError, match="'headers' and/or 'data'"):
        user_value("--v", '{"value": 1}', raw=True)
    with pytest.raises(CliError, match="--v headers must be a JSON object of strings"):
        user_value("--v", '{"headers": {"a": 1}}', raw=True)
    with pytest.raises(CliError, match="needs 'data' as base64 text"):
        user_value("--v", '{"data": 1}', raw=True)


def test_tags_option() -> None:
    assert tags("--tags", None) == {}
    assert tags("--tags", '{"a": "b"}') == {"a": "b"}
    with pytest.raises(CliError, match="not valid JSON"):
        tags("--tags", "{")


def test_action_defaults() -> None:
    assert action("--a", '{"id": "x", "state": "resolved"}', "promise.settle") == {
        "kind": "promise.settle",
        "head": {},
        "data": {"id": "x", "state": "resolved"},
    }
    assert action("--a", '{"kind": "k", "data": {}}', "promise.settle") == {
        "kind": "k",
        "head": {},
        "data": {},
    }


def test_invoke_helpers() -> None:
    assert target_address("workers") == "poll://any@workers"
    assert target_address("http://w/x") == "http://w/x"
    assert group_of("poll://any@workers") == "workers"
    assert group_of("poll://uni@workers/p1") == "workers"
    assert user_json("3") == 3
    assert user_json('"s"') == "s"
    assert user_json("plain text") == "plain text"
    assert kwarg("--kwarg", "rush=true") == ("rush", True)
    assert kwarg("--kwarg", "note=a=b") == ("note", "a=b")
    with pytest.raises(CliError, match="NAME=VALUE"):
        kwarg("--kwarg", "=1")
