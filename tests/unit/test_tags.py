"""The id rules of §3.5, with both separators: PROTOCOL.md's ``.`` and the official SDKs' ``:``."""

from __future__ import annotations

import pytest

from sustain.protocol.errors import ProtocolError
from sustain.protocol.requests import parse
from sustain.protocol.tags import is_prefixed_by, origin_of


@pytest.mark.parametrize(
    ("id", "origin"),
    [("wf", "wf"), ("wf.1", "wf"), ("wf:1", "wf"), ("wf:1.2", "wf"), ("wf.1:2", "wf"), ("", "")],
)
def test_origin_is_the_text_before_the_first_separator(id: str, origin: str) -> None:
    assert origin_of(id) == origin


def test_prefix_rule_accepts_either_separator_and_nothing_else() -> None:
    assert is_prefixed_by("wf", "wf")
    assert is_prefixed_by("wf:1", "wf") and is_prefixed_by("wf.1", "wf")
    assert is_prefixed_by("wf:1.2", "wf:1")
    assert not is_prefixed_by("wf1", "wf")
    assert not is_prefixed_by("wf-1", "wf")
    assert not is_prefixed_by("w", "wf")


def test_official_sdk_ids_pass_the_tag_and_origin_checks() -> None:
    tags = {"resonate:origin": "wf", "resonate:branch": "wf:1", "resonate:parent": "wf:1"}
    parse("promise.create", {"id": "wf:1.2", "timeoutAt": 1, "param": {}, "tags": tags})
    parse("promise.register_callback", {"awaited": "wf:1", "awaiter": "wf"})
    with pytest.raises(ProtocolError, match="same origin"):
        parse("promise.register_callback", {"awaited": "other:1", "awaiter": "wf"})
    with pytest.raises(ProtocolError, match="prefixed by resonate:origin"):
        parse("promise.create", {"id": "wfx:1", "timeoutAt": 1, "tags": {"resonate:origin": "wf"}})
