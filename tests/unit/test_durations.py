"""CLI durations (PROTOCOL.md §7.3): ``1h30m`` style, units ms, s, m, h, d."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sustain.cli.durations import UNIT_MS, InvalidDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1ms", 1),
        ("250ms", 250),
        ("1s", 1_000),
        ("90s", 90_000),
        ("1m", 60_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("1h30m", 5_400_000),
        ("1m5ms", 60_005),
        ("2d3h4m5s6ms", 2 * 86_400_000 + 3 * 3_600_000 + 4 * 60_000 + 5_000 + 6),
        ("0h5m", 300_000),
        (" 5s ", 5_000),
        ("1s1s", 2_000),
    ],
)
def test_valid_durations(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("30", "needs a unit"),
        ("0", "needs a unit"),
        ("0s", "greater than zero"),
        ("0h0m", "greater than zero"),
        ("5x", "expected"),
        ("5 s", "expected"),
        ("1.5s", "expected"),
        ("-5s", "expected"),
        ("s", "expected"),
        ("5S", "expected"),
        ("1h30", "expected"),
        ("5sec", "expected"),
        ("99999999999999999999d", "too large"),
    ],
)
def test_invalid_durations(text: str, reason: str) -> None:
    with pytest.raises(InvalidDuration, match=reason):
        parse_duration(text)


@given(st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(list(UNIT_MS))), min_size=1))
def test_sum_of_parts(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{n}{unit}" for n, unit in parts)
    total = sum(n * UNIT_MS[unit] for n, unit in parts)
    if total == 0:
        with pytest.raises(InvalidDuration):
            parse_duration(text)
    else:
        assert parse_duration(text) == total


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (850, "850ms"),
        (1_000, "1s"),
        (1_500, "1.5s"),
        (150_000, "2m30s"),
        (3_900_000, "1h5m"),
        (93_600_000 + 5_000, "1d2h"),
        (-1_500, "-1.5s"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text
