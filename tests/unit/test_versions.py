"""protocol/versions.py: the pin tags and the announcement of a poll stream."""

from __future__ import annotations

import pytest

from sustain.protocol.versions import (
    encode_functions,
    parse_functions,
    pin_of,
    pin_tags,
    serves,
)


def test_pin_tags_round_trip_and_partial_tags_pin_nothing() -> None:
    assert pin_of(pin_tags("job", 3)) == ("job", 3)
    assert pin_of({"sustain:function": "job"}) is None
    assert pin_of({"sustain:version": "2"}) is None
    assert pin_of({"sustain:function": "job", "sustain:version": "two"}) is None
    assert pin_of(None) is None


def test_announcement_round_trip() -> None:
    text = encode_functions({"b": [2, 1], "a@,": [1]})
    assert parse_functions(text) == {"b": frozenset({1, 2}), "a@,": frozenset({1})}
    assert parse_functions("{}") == {}


@pytest.mark.parametrize(
    "text",
    ['["job"]', '{"job": 1}', '{"job": ["1"]}', '{"job": [0]}', '{"": [1]}', "not json"],
)
def test_a_malformed_announcement_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="functions"):
        parse_functions(text)


def test_serves() -> None:
    assert serves({"job": [1, 2]}, ("job", 2))
    assert not serves({"job": [1]}, ("job", 2))
    assert not serves(None, ("job", 1))  # an official SDK's stream announced nothing
