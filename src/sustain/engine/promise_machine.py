"""The promise state machine (PROTOCOL.md §3.1) and how a new promise is born.

``pending`` leaves exactly once: by an explicit settle (``settledAt = now``) or by timing out
(``settledAt = timeoutAt``; a ``resonate:timer`` promise resolves instead of rejecting).
Terminal states never change; callers check ``state == "pending"`` before settling and
answer the idempotent no-op themselves.  After either transition the caller runs the
settlement chain (``settlement.py``).

A promise is born settled when its deadline has already passed at creation.
"""

from __future__ import annotations

from msgspec.structs import replace

from sustain.protocol.records import Promise, SettleState, Value
from sustain.protocol.tags import is_timer


class SettledPromise(Exception):
    """The engine attempted to settle a promise that already left ``pending``."""

    def __init__(self, promise_id: str) -> None:
        super().__init__(f"promise {promise_id!r} is already settled")
        self.promise_id = promise_id


def born(
    id: str,
    timeout_at: int,
    param: Value,
    tags: dict[str, str],
    *,
    created_at: int,
    expired: bool,
) -> Promise:
    """A new promise: pending, or already timed out when ``expired``."""
    if expired:
        return Promise(
            id,
            "resolved" if is_timer(tags) else "rejected_timedout",
            param,
            Value(),
            tags,
            timeout_at,
            created_at,
            timeout_at,
        )
    return Promise(id, "pending", param, Value(), tags, timeout_at, created_at)


def settle(p: Promise, state: SettleState, value: Value, now: int) -> Promise:
    if p.state != "pending":
        raise SettledPromise(p.id)
    return replace(p, state=state, value=value, settledAt=now)


def follow(p: Promise, leader: Promise, now: int) -> Promise:
    """A deduplicated promise settles as the promise it was attached to did (queues)."""
    if p.state != "pending":
        raise SettledPromise(p.id)
    return replace(p, state=leader.state, value=leader.value, settledAt=now)


def time_out(p: Promise) -> Promise:
    if p.state != "pending":
        raise SettledPromise(p.id)
    return replace(
        p,
        state="resolved" if is_timer(p.tags) else "rejected_timedout",
        settledAt=p.timeoutAt,
    )


def is_expired(p: Promise, now: int) -> bool:
    """Pending and past its deadline: try_timeout and the tick time it out."""
    return p.state == "pending" and p.timeoutAt <= now
