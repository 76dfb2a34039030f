"""The task transition table (PROTOCOL.md §3.4): allowed moves and refused ones."""

from __future__ import annotations

from typing import get_args

import pytest

from sustain.engine import task_machine as tm
from sustain.protocol.records import TASK_STATES, TaskState
from sustain.store.tx import LEASE, RETRY, TaskRow

ALLOWED: dict[str, set[TaskState]] = {
    "acquire": {"pending"},
    "heartbeat": {"acquired"},
    "release": {"acquired"},
    "lease_expired": {"acquired"},
    "retry": {"pending"},
    "suspend": {"acquired"},
    "resume": {"suspended"},
    "halt": {"pending", "acquired", "suspended"},
    "continue": {"halted"},
    "fulfill": {"pending", "acquired", "suspended", "halted"},
}


def row(state: TaskState) -> TaskRow:
    lease = state == "acquired"
    return TaskRow("t", state, 3, LEASE if lease else RETRY, 100, "w" if lease else None, 50)


def apply(event: str, r: TaskRow) -> TaskRow:
    if event == "acquire":
        return tm.acquire(r, "w2", 10, 1_000)
    if event == "heartbeat":
        return tm.heartbeat(r, 1_000)
    if event == "suspend":
        return tm.suspend(r)
    if event == "halt":
        return tm.halt(r)
    if event == "fulfill":
        return tm.fulfill(r)
    return tm.to_pending(r, event, 2_000, 30_000)  # type: ignore[arg-type]


def test_events_cover_the_table() -> None:
    assert set(get_args(tm.Event)) == set(ALLOWED)


@pytest.mark.parametrize("event", sorted(ALLOWED))
@pytest.mark.parametrize("state", TASK_STATES)
def test_transition(event: str, state: TaskState) -> None:
    if state not in ALLOWED[event]:
        with pytest.raises(tm.IllegalTransition) as e:
            apply(event, row(state))
        assert (e.value.task_id, e.value.state, e.value.event) == ("t", state, event)
        return
    after = apply(event, row(state))
    if event == "acquire":
        assert (after.state, after.version, after.timeout_type, after.timeout_at) == (
            "acquired",
            4,
            LEASE,
            1_010,
        )
        assert (after.pid, after.ttl) == ("w2", 10)
    elif event == "heartbeat":
        assert (after.state, after.version, after.timeout_at, after.pid) == (
            "acquired",
            3,
            1_050,
            "w",
        )
    elif event in ("suspend", "halt", "fulfill"):
        expected = {"suspend": "suspended", "halt": "halted", "fulfill": "fulfilled"}[event]
        assert (after.state, after.version, after.timeout_type, after.pid) == (
            expected,
            3,
            None,
            None,
        )
    else:
        assert (after.state, after.version, after.timeout_type, after.timeout_at, after.pid) == (
            "pending",
            3,
            RETRY,
            2_000,
            None,
        )
        assert after.ttl == (30_000 if event == "lease_expired" else 50)


def test_record_shows_lease_only_while_acquired() -> None:
    assert tm.record(row("acquired"), 2).pid == "w"
    pending = tm.record(row("pending"), 1)
    assert (pending.ttl, pending.pid, pending.resumes) == (None, None, 1)
