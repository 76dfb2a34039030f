"""Deterministic ids and the SDK-WIRE tag table, checked against the engine's tag rules."""

from __future__ import annotations

from typing import Any

import pytest

from sustain import Context, InvalidIdError
from sustain.protocol.tags import is_prefixed_by
from sustain.sdk import ids
from tests.sdk.conftest import Make, unique


def test_child_and_detached_ids_are_deterministic() -> None:
    # The official SDKs' form (SDK-WIRE §2.1): ':' after the root, '.' below it.
    assert ids.child("wf", 1) == "wf:1"
    assert ids.child(ids.child("wf", 1), 2) == "wf:1.2"
    assert ids.child("my.explicit", 3) == "my.explicit.3"
    assert ids.detached("wf", "wf:3") == ids.detached("wf", "wf:3")
    assert ids.detached("wf", "wf:3").startswith("wf:d") and len(ids.detached("wf", "wf:3")) == 20
    assert ids.detached("wf", "wf:3") != ids.detached("wf", "wf:4")
    assert ids.origin_of("wf:1.2") == ids.origin_of("wf.1") == "wf"


@pytest.mark.parametrize("bad", ["", "a\x00", "a.b", "a:b", "x" * 2000, None])
def test_invalid_root_ids(bad: Any) -> None:
    with pytest.raises(InvalidIdError):
        ids.validate_root(bad)


def test_tags_follow_the_table_and_the_prefix_rules() -> None:
    root = ids.root_tags("wf", "poll://any@g")
    assert root == {
        "resonate:origin": "wf", "resonate:branch": "wf", "resonate:parent": "wf",
        "resonate:scope": "global", "resonate:target": "poll://any@g",
    }  # fmt: skip
    local = ids.local_tags("wf:1.2", "wf", "wf", "wf:1")
    assert local["resonate:scope"] == "local" and "resonate:target" not in local
    remote = ids.global_tags("wf:2", "wf", "wf", "poll://any@g", {"resonate:timer": "true"})
    assert remote["resonate:branch"] == "wf:2" and remote["resonate:timer"] == "true"
    for id, tags in (("wf", root), ("wf:1.2", local), ("wf:2", remote)):
        for key in ("resonate:origin", "resonate:branch", "resonate:parent"):
            assert is_prefixed_by(id, tags[key])
    assert ids.resolve_target("workers") == "poll://any@workers"
    assert ids.resolve_target("http://fn.example/x") == "http://fn.example/x"


def test_nested_children_get_nested_ids(make: Make) -> None:
    sustain = make()

    def leaf(ctx: Context) -> str:
        return ctx.id

    async def middle(ctx: Context) -> Any:
        return [await ctx.run(leaf), await ctx.run(leaf)]

    @sustain.register
    async def top(ctx: Context) -> Any:
        return [await ctx.run(leaf), await ctx.run(middle)]

    id = unique("nest")
    assert sustain.run(id, top).result(timeout=30) == [f"{id}:1", [f"{id}:2.1", f"{id}:2.2"]]
    record = sustain.promises.get(f"{id}:2.1")
    assert record["tags"]["resonate:parent"] == f"{id}:2"
    assert record["tags"]["resonate:branch"] == id

