"""Small builders of stored records for the store tests."""

from __future__ import annotations

from sustain.protocol.records import Promise, PromiseState, Schedule, Value

TARGET = "resonate:target"
BRANCH = "resonate:branch"


def promise(
    id: str,
    *,
    state: PromiseState = "pending",
    tags: dict[str, str] | None = None,
    timeout_at: int = 1_000,
    created_at: int = 0,
    settled_at: int | None = None,
    param: Value | None = None,
    value: Value | None = None,
) -> Promise:
    return Promise(
        id=id,
        state=state,
        param=param if param is not None else Value(),
        value=value if value is not None else Value(),
        tags=tags if tags is not None else {},
        timeoutAt=timeout_at,
        createdAt=created_at,
        settledAt=settled_at,
    )


def schedule(id: str, *, next_run_at: int = 60_000, tags: dict[str, str] | None = None) -> Schedule:
    return Schedule(
        id=id,
        cron="* * * * *",
        promiseId="{{.id}}.{{.timestamp}}",
        promiseTimeout=60_000,
        promiseParam=Value(),
        promiseTags=tags if tags is not None else {},
        createdAt=0,
        nextRunAt=next_run_at,
    )
