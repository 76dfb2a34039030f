"""The ``data`` objects of successful answers (PROTOCOL.md §2), as msgspec Structs."""

from __future__ import annotations

import msgspec

from sustain.protocol.records import Promise, Schedule, Task


class Empty(msgspec.Struct):
    """``{}``."""


class PromiseData(msgspec.Struct):
    promise: Promise


class PromisesPage(msgspec.Struct, omit_defaults=True):
    promises: list[Promise]
    cursor: str | None = None


class TaskData(msgspec.Struct):
    task: Task


class TaskClaim(msgspec.Struct):
    """task.create / task.acquire: the task with its promise and the branch preload."""

    task: Task
    promise: Promise
    preload: list[Promise]


class PreloadData(msgspec.Struct):
    preload: list[Promise]


class TasksPage(msgspec.Struct, omit_defaults=True):
    tasks: list[Task]
    cursor: str | None = None


class ScheduleData(msgspec.Struct):
    schedule: Schedule


class SchedulesPage(msgspec.Struct, omit_defaults=True):
    schedules: list[Schedule]
    cursor: str | None = None


class InnerHead(msgspec.Struct):
    corrId: str
    status: int
    version: str


class InnerEnvelope(msgspec.Struct):
    """The nested response of a fenced action (§2.13)."""

    kind: str
    head: InnerHead
    data: PromiseData | str


class FenceData(msgspec.Struct):
    action: InnerEnvelope
    preload: list[Promise]


class RetryData(msgspec.Struct):
    """sustain.retry: the new execution, the ids copied into it resolved, and whether this
    request created it (false: ``newId`` already held a retry of the same execution)."""

    promise: Promise
    copied: list[str]
    created: bool
