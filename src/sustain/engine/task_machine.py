"""The task state machine (PROTOCOL.md §3.4): every transition a task can take, in one place.

Theory of operation: a task is a ``TaskRow`` (state, version, single timeout).  Each event
below maps a row to its successor row; the engine's operations decide *whether* an event
happens (fencing checks, 404/409 answers) and then ask this module for the next row, so the
version, timeout and lease bookkeeping of the table lives here only.  An event applied in a
state the table does not allow raises ``IllegalTransition``: that is an engine bug, never a
client error (clients get their 409 before any transition is attempted).

=================  ==============================  ===========  ========  ==================
event              from                            to           version   timeout after
=================  ==============================  ===========  ========  ==================
acquire            pending                         acquired     +1        lease @ now+ttl
heartbeat          acquired                        acquired     =         lease @ now+ttl
release            acquired                        pending      =         retry @ now+R
lease_expired      acquired                        pending      =         retry @ now+R
retry              pending                         pending      =         retry @ now+R
suspend            acquired                        suspended    =         none
resume             suspended                       pending      =         retry @ now+R
halt               pending, acquired, suspended    halted       =         none
continue           halted                          pending      =         retry @ now+R
fulfill            any but fulfilled               fulfilled    =         none
=================  ==============================  ===========  ========  ==================

Creation is not an event: ``pending_task`` (v0, retry), ``acquired_task`` (task.create, v1,
lease) and ``fulfilled_task`` (born settled, v0, no timeout).
"""

from __future__ import annotations

from typing import Literal

from msgspec.structs import replace

from sustain.protocol.records import Task, TaskState
from sustain.store.tx import LEASE, RETRY, TaskRow

Event = Literal[
    "acquire",
    "heartbeat",
    "release",
    "lease_expired",
    "retry",
    "suspend",
    "resume",
    "halt",
    "continue",
    "fulfill",
]

_FROM: dict[Event, frozenset[TaskState]] = {
    "acquire": frozenset({"pending"}),
    "heartbeat": frozenset({"acquired"}),
    "release": frozenset({"acquired"}),
    "lease_expired": frozenset({"acquired"}),
    "retry": frozenset({"pending"}),
    "suspend": frozenset({"acquired"}),
    "resume": frozenset({"suspended"}),
    "halt": frozenset({"pending", "acquired", "suspended"}),
    "continue": frozenset({"halted"}),
    "fulfill": frozenset({"pending", "acquired", "suspended", "halted"}),
}


MAX_TIME = 2**63 - 1


def later(at: int, ms: int) -> int:
    """``at + ms``, saturated at the largest storable time: a huge ttl or timeout from a
    client must mean "never", not an overflow in the store."""
    return min(at + ms, MAX_TIME)


class IllegalTransition(Exception):
    """The engine attempted a task transition that §3.4 does not allow."""

    def __init__(self, task_id: str, state: TaskState, event: Event) -> None:
        super().__init__(f"task {task_id!r}: no transition {event!r} from {state!r}")
        self.task_id = task_id
        self.state = state
        self.event = event


def _check(row: TaskRow, event: Event) -> None:
    if row.state not in _FROM[event]:
        raise IllegalTransition(row.id, row.state, event)


def pending_task(id: str, retry_at: int, retry: int) -> TaskRow:
    return TaskRow(id, "pending", 0, RETRY, retry_at, None, retry)


def acquired_task(id: str, pid: str, ttl: int, now: int) -> TaskRow:
    return TaskRow(id, "acquired", 1, LEASE, later(now, ttl), pid, ttl)


def fulfilled_task(id: str, retry: int) -> TaskRow:
    return TaskRow(id, "fulfilled", 0, None, None, None, retry)


def acquire(row: TaskRow, pid: str, ttl: int, now: int) -> TaskRow:
    _check(row, "acquire")
    return replace(
        row,
        state="acquired",
        version=row.version + 1,
        timeout_type=LEASE,
        timeout_at=later(now, ttl),
        pid=pid,
        ttl=ttl,
    )


def heartbeat(row: TaskRow, now: int) -> TaskRow:
    _check(row, "heartbeat")
    return replace(row, timeout_at=later(now, row.ttl))


def to_pending(row: TaskRow, event: Event, retry_at: int, retry: int) -> TaskRow:
    """release, lease_expired, retry, resume, continue: back to pending with a retry timer.

    A lapsed lease also resets the stored ttl to R (§0.1 item 12)."""
    _check(row, event)
    ttl = retry if event == "lease_expired" else row.ttl
    return replace(row, state="pending", timeout_type=RETRY, timeout_at=retry_at, pid=None, ttl=ttl)


def suspend(row: TaskRow) -> TaskRow:
    _check(row, "suspend")
    return replace(row, state="suspended", timeout_type=None, timeout_at=None, pid=None)


def halt(row: TaskRow) -> TaskRow:
    _check(row, "halt")
    return replace(row, state="halted", timeout_type=None, timeout_at=None, pid=None)


def fulfill(row: TaskRow) -> TaskRow:
    _check(row, "fulfill")
    return replace(row, state="fulfilled", timeout_type=None, timeout_at=None, pid=None)


def record(row: TaskRow, resumes: int) -> Task:
    """The wire record: ``ttl`` and ``pid`` only while acquired."""
    if row.state == "acquired":
        return Task(row.id, row.state, row.version, resumes, row.ttl, row.pid)
    return Task(row.id, row.state, row.version, resumes)
