"""Queues, Sustain's flow control (docs/queues.md): the requests of the ``sustain.queue.*``
operations, their checks, the rate syntax and the queue tags' checks.

A rate is ``N/unit`` (``100/min``), or ``N/<k><unit>`` (``5/10s``): at most N dispatches per
period, smoothed (one every period/N, no bursts).  Units: ``ms``, ``s``/``sec``/``second``,
``m``/``min``/``minute``, ``h``/``hour``, ``d``/``day``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated

import msgspec

from sustain.protocol import tags as t
from sustain.protocol.errors import ProtocolError

_UNITS = {
    "ms": 1,
    "s": 1000,
    "sec": 1000,
    "second": 1000,
    "m": 60_000,
    "min": 60_000,
    "minute": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
}
_RATE = re.compile(r"^\s*(\d{1,12})\s*/\s*(\d{0,9})\s*([a-z]+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
MAX_PRIORITY = 2**31 - 1
RATE_HELP = 'a rate is "<count>/<unit>" like "100/min" or "5/10s" (units: ms, s, min, h, day)'
QUEUE_NOT_FOUND = "Queue not found"

Limit = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class QueueCreate(msgspec.Struct):
    """``sustain.queue.create``: a queue, or new limits for an existing one (its counters
    and the tasks on it stay)."""

    name: str
    concurrency: Limit | None = None
    per_key_concurrency: Limit | None = None
    rate: str | None = None
    dedup: bool = False


class QueueName(msgspec.Struct):
    """``sustain.queue.get`` / ``sustain.queue.delete``."""

    name: str


class QueueList(msgspec.Struct):
    """``sustain.queue.list``: no fields."""


def parse_rate(text: str) -> tuple[int, int] | None:
    """``(count, period_ms)`` of a rate, or None when it is not one (count >= 1)."""
    match = _RATE.match(text.lower())
    if match is None:
        return None
    count, every, unit = match.groups()
    scale = _UNITS.get(unit)
    n = int(count)
    k = int(every) if every else 1
    if scale is None or n < 1 or k < 1:
        return None
    return n, k * scale


def interval(rate: str) -> int:
    """Milliseconds between two dispatches at ``rate`` (already checked), at least 1."""
    parsed = parse_rate(rate)
    assert parsed is not None, rate
    count, period = parsed
    return max(1, period // count)


def _fail(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise _fail("Queue name is required: 1 to 128 letters, digits, '_', '.', ':' or '-'")


def check_create(r: QueueCreate) -> None:
    check_name(r.name)
    for field, value in (("concurrency", r.concurrency),
                         ("per_key_concurrency", r.per_key_concurrency)):  # fmt: skip
        if value is not None and value < 1:
            raise _fail(f"Queue {field} must be a positive integer (got {value})")
    if r.rate is not None and parse_rate(r.rate) is None:
        raise _fail(f"Invalid queue rate {r.rate!r}: {RATE_HELP}")


def check_name_request(r: QueueName) -> None:
    check_name(r.name)


def priority_of(tags: Mapping[str, str]) -> int:
    """The ``sustain:priority`` of checked tags (0 when absent)."""
    value = tags.get(t.PRIORITY)
    return int(value) if value is not None else 0


def check_tags(tags: Mapping[str, str]) -> None:
    """The queue tags of a promise: a well-formed queue name; a priority an integer."""
    if t.DEDUP_OF in tags:
        raise _fail(f"{t.DEDUP_OF} is set by the server, not by a client")
    queue = tags.get(t.QUEUE)
    if queue is not None:
        check_name(queue)
    elif t.QUEUE_KEY in tags or t.PRIORITY in tags:
        raise _fail(f"{t.QUEUE_KEY} and {t.PRIORITY} need a {t.QUEUE} tag")
    value = tags.get(t.PRIORITY)
    bad = value is not None and not re.fullmatch(r"-?\d{1,10}", value)
    if value is not None and (bad or abs(int(value)) > MAX_PRIORITY):
        raise _fail(f"{t.PRIORITY} must be an integer (got {value!r})")
