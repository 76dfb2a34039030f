"""The call graph behind ``sustain tree`` and the CLI's value encoding (pure parts)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sustain.cli.errors import CliError
from sustain.cli.invoke import parse_arg, target_address
from sustain.cli.payloads import action, tags, value
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
    assert callgraph.CallNode(_p("a", 0, func="f")).label == "f"
    assert callgraph.CallNode(_p("a", 0, func="f", **{"resonate:scope": "global"})).label == (
        "(rpc f)"
    )
    assert callgraph.CallNode(_p("a", 0, func="g", **{"resonate:scope": "local"})).label == (
        "(run g)"
    )
    assert callgraph.CallNode(_p("a", 0, **{"resonate:timer": "true"})).label == "(sleep)"
    assert callgraph.CallNode(_p("a", 0, **{"resonate:scope": "global"})).label == "(rpc)"
    assert callgraph.CallNode(_p("a", 0)).label == ""


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
        "promise": root,
        "children": [{"promise": _p("r.1", 1, "r"), "children": []}],
    }


def test_codec_round_trip() -> None:
    assert decode_data(encode_data("héllo")) == "héllo"
    assert json.loads(decode_data(encode_data({"a": 1})) or "") == {"a": 1}
    assert decode_data(5) is None


def test_value_option() -> None:
    assert value("--v", None) == {}
    assert value("--v", '{"headers": {"a": "b"}, "data": 1}') == {
        "headers": {"a": "b"},
        "data": encode_data(1),
    }
    with pytest.raises(CliError, match="'headers' and/or 'data'"):
        value("--v", '{"value": 1}')
    with pytest.raises(CliError, match="--v headers must be a JSON object of strings"):
        value("--v", '{"headers": {"a": 1}}')


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
    assert parse_arg("3") == 3
    assert parse_arg('"s"') == "s"
    assert parse_arg("plain text") == "plain text"
