"""The server's bounds on one request's work and answer (docs/security.md, "Limits").

A Resonate server bounds only the body size; Sustain also bounds what a small request can
make the server do: answer bytes, batch elements, heartbeat entries, cron text and terms,
tag maps.  Each bound is a ``limits.*`` configuration key; the checks themselves live where
the request is read (``validation``, ``envelope.parse_batch``) and answer a 400 worded like
the catalogue's own (``Invalid 'limit' — must be between 1 and 1000``).

Sizes are estimates (``answer_size``): the characters of an answer's strings plus a little
per field, walked over the records without encoding them.  They are exact enough to bound
memory, and cheap (proportional to the number of fields, not to their bytes), so the
writer thread can count them as it reads rows.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sustain.protocol.records import Promise, Schedule, Value

MSG_ANSWER_TOO_LARGE = "Batch answer too large — send this request again"


class Limits(msgspec.Struct, frozen=True):
    """The bounds the protocol layer checks (the defaults are the documented ones)."""

    # Answer bytes (estimated) of a lone request, and of a whole ``sustain.batch``.
    max_answer_size: int = 16 * 1024 * 1024
    # Elements of one ``sustain.batch``.
    max_batch_requests: int = 1000
    # Entries of one ``task.heartbeat`` (the SDK sends at most 1,000 per request).
    max_heartbeat_tasks: int = 10_000
    # Characters of a cron expression, and its terms (comma-separated items of all fields).
    max_cron_length: int = 1024
    max_cron_terms: int = 256
    # Entries of any tag map: stored tags, schedule promiseTags, search filters.
    max_tags: int = 64


DEFAULT_LIMITS = Limits()


def too_many(field: str, most: int) -> str:
    return f"Invalid '{field}' — at most {most} allowed"


def cron_too_long(most: int) -> str:
    return f"Invalid cron expression — must be at most {most} characters"


def cron_too_many_terms(most: int) -> str:
    return f"Invalid cron expression — must have at most {most} terms"


def cron_terms(expr: str) -> int:
    """Terms of a cron expression as its parser sees them: comma-separated items of each
    blank-separated field (a shorthand such as ``@daily`` is one)."""
    return sum(field.count(",") + 1 for field in expr.split())


# -- answer sizes --------------------------------------------------------------------------

_FIELD = 8  # a field's name, quotes, colon and comma, roughly
_RECORD = 160  # the fixed part of a promise or schedule record (names, numbers, state)


def _text(value: str | None) -> int:
    return 0 if value is None else len(value)


def _map(value: dict[str, str] | None) -> int:
    if not value:
        return 2
    return sum(len(k) + len(v) + 6 for k, v in value.items()) + 2


def _value(value: Value) -> int:
    return _map(value.headers) + _text(value.data) + 2 * _FIELD


def promise_size(p: Promise) -> int:
    """The estimated encoded size of one promise record."""
    return _RECORD + len(p.id) + _value(p.param) + _value(p.value) + _map(p.tags)


def schedule_size(s: Schedule) -> int:
    """The estimated encoded size of one schedule record."""
    return (
        _RECORD
        + len(s.id)
        + len(s.cron)
        + len(s.promiseId)
        + _value(s.promiseParam)
        + _map(s.promiseTags)
    )


def answer_size(data: Any) -> int:
    """The estimated encoded size of any answer ``data`` (records, pages, messages)."""
    if isinstance(data, str):
        return len(data) + 2
    if isinstance(data, Promise):
        return promise_size(data)
    if isinstance(data, Schedule):
        return schedule_size(data)
    if isinstance(data, msgspec.Struct):
        return sum(_FIELD + answer_size(getattr(data, f)) for f in data.__struct_fields__) + 2
    if isinstance(data, (list, tuple)):
        return sum(answer_size(item) + 1 for item in data) + 2
    if isinstance(data, dict):
        return sum(len(str(k)) + 4 + answer_size(v) for k, v in data.items()) + 2
    return _FIELD  # a number, a bool, null
