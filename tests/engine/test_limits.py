"""The engine's limits (docs/security.md, "Limits"): what ``prepare`` refuses without a store,
what ``run`` pages, and the cron cache's bound.

``Engine.prepare`` takes no ``Tx``: the server calls it before handing an operation to the
store, so a request refused here never reaches SQLite's writer thread (issue 13 item 8).
"""

from __future__ import annotations

from typing import Any

import pytest

from sustain.engine import Engine, EngineConfig, Outcome
from sustain.engine import schedules as s
from sustain.engine.dispatch import Prepared
from sustain.protocol.limits import Limits, promise_size
from sustain.store.memory import MemoryStore

TARGET = {"resonate:target": "poll://any@g"}
FAR = 2**50


def schedule(cron: str) -> dict[str, Any]:
    return {"id": "s", "cron": cron, "promiseId": "x", "promiseTimeout": 1, "promiseTags": TARGET}


@pytest.mark.parametrize(
    ("kind", "data", "message"),
    [
        (
            "task.heartbeat",
            {"pid": "w", "tasks": [{"id": f"t{i}", "version": 0} for i in range(4)]},
            "Invalid 'tasks' — at most 3 allowed",
        ),
        (
            "schedule.create",
            schedule("0 0 * * *" + " " * 20),
            "Invalid cron expression — must be at most 20 characters",
        ),
        (
            "schedule.create",
            schedule("0 0 1,2 * *"),
            "Invalid cron expression — must have at most 5 terms",
        ),
        ("schedule.create", schedule("0 0 31 2 *"), None),  # parses; no occurrence: run's 400
        ("schedule.create", schedule("0 0 32 * *"), "Invalid cron expression"),
        (
            "promise.search",
            {"tags": {"a": "1", "b": "2", "c": "3", "d": "4"}},
            "Invalid 'tags' — at most 3 allowed",
        ),
        (
            "schedule.search",
            {"tags": {"a": "1", "b": "2", "c": "3", "d": "4"}},
            "Invalid 'tags' — at most 3 allowed",
        ),
        (
            "promise.create",
            {"id": "p", "timeoutAt": FAR, "tags": {"a": "1", "b": "2", "c": "3", "d": "4"}},
            "Invalid 'tags' — at most 3 allowed",
        ),
        (
            "task.create",
            {
                "pid": "w",
                "ttl": 1,
                "action": {
                    "kind": "promise.create",
                    "head": {},
                    "data": {
                        "id": "p",
                        "timeoutAt": FAR,
                        "tags": {**TARGET, "a": "", "b": "", "c": ""},
                    },
                },
            },
            "Invalid 'tags' — at most 3 allowed",
        ),
        (
            "schedule.create",
            {**schedule("* * * * *"), "promiseTags": {**TARGET, "a": "", "b": "", "c": ""}},
            "Invalid 'promiseTags' — at most 3 allowed",
        ),
    ],
)
def test_prepare_refuses_over_limit_input_without_a_store(
    kind: str, data: dict[str, Any], message: str | None
) -> None:
    limits = Limits(max_heartbeat_tasks=3, max_cron_length=20, max_cron_terms=5, max_tags=3)
    prepared = Engine(EngineConfig(limits=limits)).prepare(kind, data)
    if message is None:
        assert isinstance(prepared, Prepared)
    else:
        assert prepared == Outcome(400, message)


def test_a_fence_action_over_the_limits_is_refused_after_try_timeout() -> None:
    """The inner action is parsed by ``prepare``; its 400 is answered by ``run`` after the
    try_timeout of §0.1 item 3 (the order a fence always had)."""
    engine = Engine(EngineConfig(limits=Limits(max_tags=1)))
    store = MemoryStore()
    inner = {"id": "t.1", "timeoutAt": FAR, "tags": {"a": "", "b": ""}}
    fence = {"id": "t", "version": 0, "action": {"kind": "promise.create", "data": inner}}
    prepared = engine.prepare("task.fence", fence)
    assert isinstance(prepared, Prepared)
    outcome = store.run(lambda tx: engine.run(tx, prepared, 0, "c"))
    assert (outcome.status, outcome.data) == (400, "Invalid 'tags' — at most 1 allowed")


def test_a_search_answers_a_cursor_at_the_answer_budget() -> None:
    engine = Engine(EngineConfig())
    store = MemoryStore()
    for i in range(5):
        create = {"id": f"p{i}", "timeoutAt": FAR, "param": {"data": "x" * 1000}}
        store.run(lambda tx, c=create: engine.apply(tx, "promise.create", c, 0, "c"))
    one = promise_size(store.run(lambda tx: tx.get_promise("p0")))  # type: ignore[arg-type]
    prepared = engine.prepare("promise.search", {"limit": 100})
    assert isinstance(prepared, Prepared)
    outcome = store.run(lambda tx: engine.run(tx, prepared, 0, "c", max_answer=2 * one))
    assert [p.id for p in outcome.data.promises] == ["p0", "p1"]
    assert outcome.data.cursor == "p1"
    # The configured limit is the default budget: all five fit in 16 MiB.
    outcome = store.run(lambda tx: engine.run(tx, prepared, 0, "c"))
    assert len(outcome.data.promises) == 5
    assert outcome.data.cursor is None


def test_the_cron_cache_keeps_only_small_expressions() -> None:
    s._cached.cache_clear()
    long = "0 0 * * *" + " " * (s.CRON_CACHE_TEXT + 1)
    assert s.next_run(long, 0) == s.next_run("0 0 * * *", 0)
    info = s._cached.cache_info()
    assert info.currsize == 1  # the short one only
    assert info.maxsize == s.CRON_CACHE
    for minute in range(60):
        for hour in range(6):
            s.next_run(f"{minute} {hour} * * *", 0)
    assert s._cached.cache_info().currsize == s.CRON_CACHE
