"""Records to rows and back, for the SQL stores (SQLite and PostgreSQL).

Both stores keep the same columns in the same order (``_P_COLS``, ``_T_COLS`` and the
schedule columns of each ``*_tx.py``) and the same encodings: JSON text for tags and headers
(msgspec both ways), NULL for an absent ``headers``/``data`` as distinct from ``'{}'``/``''``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

import msgspec

from sustain.protocol.records import Promise, Schedule, TaskState, Value
from sustain.protocol.tags import BRANCH, ORIGIN, TARGET
from sustain.store.tx import TaskRow

T = TypeVar("T")


def sized(
    items: Iterable[T], limit: int, max_size: int | None, size: Callable[[T], int]
) -> list[T]:
    """The first ``limit`` of ``items``, or fewer: with ``max_size``, stop after the first
    item whose running size passes it.  ``items`` is read lazily, so a store that streams its
    rows holds no more of them than the answer needs (``engine.pages.fit`` cuts the rest)."""
    out: list[T] = []
    total = 0
    for item in items:
        out.append(item)
        if len(out) >= limit:
            break
        if max_size is not None:
            total += size(item)
            if total > max_size:
                break
    return out


encode = msgspec.json.Encoder().encode
decode_map = msgspec.json.Decoder(dict[str, str]).decode


def json_text(obj: Mapping[str, str] | None) -> str | None:
    # Text, not bytes: SQLite's JSON functions must see TEXT (a BLOB is not JSON text), and
    # PostgreSQL's jsonb takes text too.
    return None if obj is None else encode(obj).decode()


def tags_text(tags: Mapping[str, str]) -> str:
    return encode(tags).decode()


# A store may check tags before they are written (PostgreSQL refuses NUL in its jsonb search).
TagsText = Callable[[Mapping[str, str]], str]


def promise_params(p: Promise, tags: TagsText = tags_text) -> tuple[Any, ...]:
    """The insert row of a promise (``_P_INSERT``), with the reserved tags that indexes need
    copied into their own columns."""
    return (
        p.id,
        p.state,
        json_text(p.param.headers),
        p.param.data,
        json_text(p.value.headers),
        p.value.data,
        tags(p.tags),
        p.timeoutAt,
        p.createdAt,
        p.settledAt,
        p.tags.get(TARGET),
        p.tags.get(BRANCH),
        p.tags.get(ORIGIN),
    )


def task_params(t: TaskRow) -> tuple[Any, ...]:
    return (t.id, t.state, t.version, t.timeout_type, t.timeout_at, t.pid, t.ttl)


def schedule_params(s: Schedule, tags: TagsText = tags_text) -> tuple[Any, ...]:
    return (
        s.id,
        s.cron,
        s.promiseId,
        s.promiseTimeout,
        json_text(s.promiseParam.headers),
        s.promiseParam.data,
        tags(s.promiseTags),
        s.createdAt,
        s.nextRunAt,
        s.lastRunAt,
    )


def value(headers: str | None, data: str | None) -> Value:
    return Value(headers=None if headers is None else decode_map(headers), data=data)


def promise(row: tuple[Any, ...]) -> Promise:
    pid, state, ph, pd, vh, vd, tags, timeout_at, created_at, settled_at = row
    return Promise(
        id=pid,
        state=state,
        param=value(ph, pd),
        value=value(vh, vd),
        tags=decode_map(tags),
        timeoutAt=timeout_at,
        createdAt=created_at,
        settledAt=settled_at,
    )


def task(row: tuple[Any, ...]) -> TaskRow:
    tid, state, version, timeout_type, timeout_at, pid, ttl = row
    return TaskRow(
        id=tid,
        state=cast(TaskState, state),
        version=version,
        timeout_type=timeout_type,
        timeout_at=timeout_at,
        pid=pid,
        ttl=ttl,
    )


def schedule(row: tuple[Any, ...]) -> Schedule:
    sid, cron, promise_id, timeout, ph, pd, tags, created_at, next_run_at, last_run_at = row
    return Schedule(
        id=sid,
        cron=cron,
        promiseId=promise_id,
        promiseTimeout=timeout,
        promiseParam=value(ph, pd),
        promiseTags=decode_map(tags),
        createdAt=created_at,
        nextRunAt=next_run_at,
        lastRunAt=last_run_at,
    )
