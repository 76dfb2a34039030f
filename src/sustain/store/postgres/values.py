"""Parameters and result values of ``PostgresTx``'s prepared statements, in libpq's text
format: what the pipeline sends (``params``) and what it reads back (``promise_at``, ...),
without psycopg's per-value adaptation on the hot path.

Text cannot hold NUL characters in PostgreSQL, nor ``\\u0000`` in jsonb (tag search): a value
carrying one raises ``psycopg.DataError`` (``NUL_MESSAGE``) before anything is sent, which the
store answers 400 (store.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import psycopg
from psycopg import pq

from sustain.protocol.addresses import parse_address
from sustain.protocol.records import Promise, Schedule
from sustain.store.sql.rows import encode as _encode
from sustain.store.sql.rows import promise as _promise
from sustain.store.sql.rows import schedule as _schedule
from sustain.store.sql.rows import task as _task
from sustain.store.tx import TaskRow

NUL_MESSAGE = "PostgreSQL text fields cannot contain NUL (0x00) bytes"


def text(s: str) -> bytes:
    b = s.encode()
    if b"\x00" in b:
        raise psycopg.DataError(NUL_MESSAGE)
    return b


def _param(v: object) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, str):
        return text(v)
    if isinstance(v, bool):
        return b"t" if v else b"f"
    if isinstance(v, int):
        return b"%d" % v
    raise TypeError(f"cannot send {type(v).__name__} to PostgreSQL")


def params(values: Sequence[object]) -> list[bytes | None]:
    return [_param(v) for v in values]


# Result values arrive as text: NOT NULL columns through ``decoded`` (``_s``) and ``_i``,
# nullable ones through ``_str``/``_int``.
def decoded(b: bytes | None) -> str:
    assert b is not None
    return b.decode()


_s = decoded


def _i(b: bytes | None) -> int:
    assert b is not None
    return int(b)


def _str(b: bytes | None) -> str | None:
    return None if b is None else b.decode()


def _int(b: bytes | None) -> int | None:
    return None if b is None else int(b)


def promise_at(res: pq.abc.PGresult, i: int) -> Promise:
    v = res.get_value
    return _promise((
        _s(v(i, 0)), _s(v(i, 1)), _str(v(i, 2)), _str(v(i, 3)), _str(v(i, 4)), _str(v(i, 5)),
        _s(v(i, 6)), _i(v(i, 7)), _i(v(i, 8)), _int(v(i, 9)),
    ))  # fmt: skip


def task_at(res: pq.abc.PGresult, i: int, col: int = 0, id: str | None = None) -> TaskRow:
    """The task at row ``i``, its columns from ``col`` on (``id`` given: without the id)."""
    v = res.get_value
    if id is None:
        id = _s(v(i, col))
        col += 1
    return _task((
        id, _s(v(i, col)), _i(v(i, col + 1)), _int(v(i, col + 2)), _int(v(i, col + 3)),
        _str(v(i, col + 4)), _i(v(i, col + 5)),
    ))  # fmt: skip


def schedule_at(res: pq.abc.PGresult, i: int) -> Schedule:
    v = res.get_value
    return _schedule((
        _s(v(i, 0)), _s(v(i, 1)), _s(v(i, 2)), _i(v(i, 3)), _str(v(i, 4)), _str(v(i, 5)),
        _s(v(i, 6)), _i(v(i, 7)), _i(v(i, 8)), _int(v(i, 9)),
    ))  # fmt: skip


def tags_json(tags: Mapping[str, str]) -> str:
    # The text column would take "\u0000", but the jsonb cast of tag search would fail on it.
    for key, value in tags.items():
        if "\x00" in key or "\x00" in value:
            raise psycopg.DataError(NUL_MESSAGE)
    return _encode(tags).decode()


def route(address: str) -> tuple[str | None, str | None, str | None]:
    """(cast, group, id) of a ``poll://`` address, decoded exactly as the poll registry
    compares them; (None, None, None) for any other scheme or an invalid address."""
    parsed = parse_address(address)
    if parsed is None or parsed.scheme != "poll":
        return None, None, None
    return parsed.cast, parsed.group, parsed.id
