"""Human durations for the CLI: ``1h30m``, ``250ms``, ``2d`` (PROTOCOL.md §7.3).

A duration is one or more ``<digits><unit>`` parts with units ``ms s m h d``, summed.  A bare
number is refused (is ``30`` seconds or milliseconds?), as are unknown units and a zero
total: every duration the CLI asks for (timeouts, TTLs, delays) is meaningless at zero.
"""

from __future__ import annotations

import re

UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}

# "ms" must be tried before "m" so that "5ms" is not read as 5 minutes and a stray "s".
_PART = re.compile(r"(\d+)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:ms|s|m|h|d))+")
_MAX_MS = 2**63 - 1


class InvalidDuration(ValueError):
    """The text is not a duration like ``1h30m``."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(f"invalid duration {text!r}: {reason}")
        self.text = text


def parse_duration(text: str) -> int:
    """Milliseconds in ``text``; raises ``InvalidDuration``."""
    stripped = text.strip()
    if not stripped:
        raise InvalidDuration(text, "empty (use e.g. 30s, 5m, 1h30m)")
    if stripped.isdigit():
        raise InvalidDuration(text, "a number needs a unit: ms, s, m, h or d (e.g. 30s)")
    if not _WHOLE.fullmatch(stripped):
        raise InvalidDuration(text, "expected <number><unit> parts with units ms, s, m, h, d")
    total = sum(int(n) * UNIT_MS[unit] for n, unit in _PART.findall(stripped))
    if total == 0:
        raise InvalidDuration(text, "must be greater than zero")
    if total > _MAX_MS:
        raise InvalidDuration(text, "too large")
    return total


def format_duration(ms: int) -> str:
    """A short human rendering: ``850ms``, ``1.5s``, ``2m30s``, ``1h5m``, ``3d2h``."""
    if ms < 0:
        return "-" + format_duration(-ms)
    if ms < 1_000:
        return f"{ms}ms"
    if ms < 60_000:
        seconds = ms / 1_000
        return f"{seconds:.1f}s".replace(".0s", "s")
    parts: list[str] = []
    remaining = ms // 1_000
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    # Two most significant parts are enough to read at a glance.
    return "".join(parts[:2])
