"""The wire records of PROTOCOL.md §2.0, as msgspec Structs.

Field names are the wire's (camelCase) so records encode without renaming.  Optional fields
are omitted when unset (``omit_defaults``): the official SDKs' validators reject ``null``
where a field must be absent.  Required-but-empty fields (``tags``, ``param``, ``resumes``)
have no default, so they are always encoded.
"""

from __future__ import annotations

from typing import Literal

import msgspec

VERSION = "2026-04-01"

PromiseState = Literal["pending", "resolved", "rejected", "rejected_canceled", "rejected_timedout"]
SettleState = Literal["resolved", "rejected", "rejected_canceled"]
TaskState = Literal["pending", "acquired", "suspended", "halted", "fulfilled"]

PROMISE_STATES: tuple[PromiseState, ...] = (
    "pending",
    "resolved",
    "rejected",
    "rejected_canceled",
    "rejected_timedout",
)
TASK_STATES: tuple[TaskState, ...] = ("pending", "acquired", "suspended", "halted", "fulfilled")


class Value(msgspec.Struct, omit_defaults=True):
    """A promise's ``param`` or ``value``: opaque ``data`` (base64 by convention) and headers."""

    headers: dict[str, str] | None = None
    data: str | None = None


class Promise(msgspec.Struct, omit_defaults=True):
    id: str
    state: PromiseState
    param: Value
    value: Value
    tags: dict[str, str]
    timeoutAt: int
    createdAt: int
    settledAt: int | None = None


class Task(msgspec.Struct, omit_defaults=True):
    """A task as the wire shows it: ``ttl`` and ``pid`` only while acquired."""

    id: str
    state: TaskState
    version: int
    resumes: int
    ttl: int | None = None
    pid: str | None = None


class Schedule(msgspec.Struct, omit_defaults=True):
    id: str
    cron: str
    promiseId: str
    promiseTimeout: int
    promiseParam: Value
    promiseTags: dict[str, str]
    createdAt: int
    nextRunAt: int
    lastRunAt: int | None = None


class TaskRef(msgspec.Struct):
    id: str
    version: int


class ExecuteData(msgspec.Struct):
    task: TaskRef


class UnblockData(msgspec.Struct):
    promise: Promise


class Message(msgspec.Struct, omit_defaults=True):
    """A message to a worker or listener (PROTOCOL.md §4.2)."""

    kind: Literal["execute", "unblock"]
    head: dict[str, str]
    data: ExecuteData | UnblockData


class OutboxEntry(msgspec.Struct):
    """A message waiting in the outbox, with its destination address."""

    address: str
    message: Message
