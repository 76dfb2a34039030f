"""Typed request data for every operation of PROTOCOL.md §2, and ``parse``.

``parse(kind, data)`` decodes ``data`` (already a JSON-decoded dict) into the op's Struct with
msgspec in strict mode (a float is not an int, a bool is not an int, tag and header maps are
``str -> str``, ``param.data`` must be a string) and then validates it, raising
``ProtocolError(400, <catalogue message>)`` for the **first** failing check in the order of
§0.1 item 2: top-level fields in table order, nested actions in array order (each with its own
op's rules), then struct-level checks.  The checks themselves live in ``validation``.

``task.fence`` is special (§0.1 item 3): ``parse`` only decodes and validates the outer
request; the engine runs try_timeout and then ``parse_fence_action`` for the inner action.
``schedule.create``'s cron check belongs to the engine (it needs ``engine.cron``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from sustain.protocol import queues as qu
from sustain.protocol import tags as t
from sustain.protocol import validation as v
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import DEFAULT_LIMITS, Limits
from sustain.protocol.records import PromiseState, SettleState, TaskState, Value
from sustain.protocol.status import GET as STATUS_GET
from sustain.protocol.status import SET as STATUS_SET
from sustain.protocol.status import StatusGet, StatusSet, check_get, check_set

# SQLite stores 64-bit integers; anything larger is a parse error, not a 500 later.
I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class _Req(msgspec.Struct):
    pass


class IdRequest(_Req):
    """``{id}``: promise.get, task.get/halt/continue, schedule.get/delete."""

    id: str


class PromiseCreate(_Req):
    id: str
    timeoutAt: I64
    param: Value | None = None
    tags: dict[str, str] | None = None

    @property
    def param_or_empty(self) -> Value:
        return self.param if self.param is not None else Value()

    @property
    def tags_or_empty(self) -> dict[str, str]:
        return self.tags if self.tags is not None else {}


class PromiseSettle(_Req):
    id: str
    state: SettleState
    value: Value | None = None


class RegisterCallback(_Req):
    awaited: str
    awaiter: str


class RegisterListener(_Req):
    awaited: str
    address: str


class PromiseSearch(_Req):
    state: PromiseState | None = None
    tags: dict[str, str] | None = None
    limit: I64 | None = None
    cursor: str | None = None


class CreateAction(_Req):
    kind: str
    head: Any
    data: PromiseCreate


class SettleAction(_Req):
    kind: str
    head: Any
    data: PromiseSettle


class CallbackAction(_Req):
    kind: str
    head: Any
    data: RegisterCallback


class FenceAction(_Req):
    kind: str
    data: Any
    head: Any = None


class TaskCreate(_Req):
    pid: str
    ttl: I64
    action: CreateAction


class TaskAcquire(_Req):
    id: str
    version: I64
    pid: str
    ttl: I64


class TaskRelease(_Req):
    id: str
    version: I64


class TaskFulfill(_Req):
    id: str
    version: I64
    action: SettleAction


class TaskSuspend(_Req):
    id: str
    version: I64
    actions: list[CallbackAction]


class TaskFence(_Req):
    id: str
    version: I64
    action: FenceAction
    # Sustain-only opt-out (docs/decisions.md, "task.fence preload opt-out"): false asks for
    # ``preload: []``.  Absent or true is the protocol's full preload; a Resonate server
    # ignores the unknown field (§1.4), so a client sending it works against either.
    want_preload: bool = msgspec.field(default=True, name="sustain:preload")


class HeartbeatTask(_Req):
    id: str
    version: I64


class TaskHeartbeat(_Req):
    pid: str
    tasks: list[HeartbeatTask]


class TaskSearch(_Req):
    state: TaskState | None = None
    limit: I64 | None = None
    cursor: str | None = None


class ScheduleCreate(_Req):
    id: str
    cron: str
    promiseId: str
    promiseTimeout: I64
    promiseParam: Value | None = None
    promiseTags: dict[str, str] | None = None


class ScheduleSearch(_Req):
    tags: dict[str, str] | None = None
    limit: I64 | None = None
    cursor: str | None = None


class DebugTick(_Req):
    time: I64


class RetryRequest(_Req):
    """``sustain.retry`` (docs/protocol.md, "sustain.retry"): run the failed execution ``id``
    again under ``newId`` (default: a derived ``<id>~retry-<n>``), its resolved children
    taken over; with ``fromStep``, only those of the steps before it."""

    id: str
    newId: str | None = None
    fromStep: I64 | None = None
    timeoutAt: I64 | None = None


class NoData(_Req):
    """debug.start/stop/reset/snap: any object is accepted."""


Request = (
    IdRequest
    | PromiseCreate
    | PromiseSettle
    | RegisterCallback
    | RegisterListener
    | PromiseSearch
    | TaskCreate
    | TaskAcquire
    | TaskRelease
    | TaskFulfill
    | TaskSuspend
    | TaskFence
    | TaskHeartbeat
    | TaskSearch
    | ScheduleCreate
    | ScheduleSearch
    | DebugTick
    | RetryRequest
    | NoData
    | StatusSet
    | StatusGet
)

_PROMISE_ID = "Promise ID is required"
_TASK_ID = "Task ID is required"
_SCHEDULE_ID = "Schedule ID is required"


def _check_id_promise(r: IdRequest, _: Limits) -> None:
    v.required(r.id, _PROMISE_ID)


def _check_id_task(r: IdRequest, _: Limits) -> None:
    v.required(r.id, _TASK_ID)


def _check_id_schedule(r: IdRequest, _: Limits) -> None:
    v.required(r.id, _SCHEDULE_ID)


def _check_promise_search(r: PromiseSearch, limits: Limits) -> None:
    v.limit(r.limit)
    v.tag_count(r.tags, limits)


def _check_retry(r: RetryRequest, _: Limits) -> None:
    v.required(r.id, _PROMISE_ID)
    if r.newId is not None:
        v.required(r.newId, "newId must not be empty")
        if "\x00" in r.newId:
            raise v.fail("newId must not contain null bytes")
        if t.is_prefixed_by(r.newId, r.id) or t.is_prefixed_by(r.id, r.newId):
            raise v.fail("newId must not be id, above it or below it")
        if t.has_separator(r.newId) != t.has_separator(r.id):
            # Children join a root with ':' and anything else with '.' (SDK-WIRE §2.1): the
            # copies' ids are only the ones a replay mints when both ids are of one kind.
            raise v.fail("newId must contain '.' or ':' exactly when id does")
    if r.fromStep is not None and r.fromStep < 1:
        raise v.fail("fromStep must be a positive integer")
    if r.timeoutAt is not None and r.timeoutAt < 0:
        raise v.fail("TimeoutAt must be a non-negative integer")


def _check_task_search(r: TaskSearch, _: Limits) -> None:
    v.limit(r.limit)


def _check_schedule_search(r: ScheduleSearch, limits: Limits) -> None:
    v.limit(r.limit)
    v.tag_count(r.tags, limits)


def _check_acquire(r: TaskAcquire, _: Limits) -> None:
    v.required(r.id, _TASK_ID)
    v.version(r.version)
    v.required(r.pid, "Process ID is required")
    v.ttl(r.ttl)


def _check_release(r: TaskRelease, _: Limits) -> None:
    v.required(r.id, _TASK_ID)
    v.version(r.version)


def _check_fulfill(r: TaskFulfill, _: Limits) -> None:
    v.required(r.id, _TASK_ID)
    v.version(r.version)
    v.promise_settle(r.action.data)
    if r.action.data.id != r.id:
        raise ProtocolError(400, "Action ID must match the task ID")


def _check_suspend(r: TaskSuspend, _: Limits) -> None:
    v.required(r.id, _TASK_ID)
    v.version(r.version)
    if not r.actions:
        raise ProtocolError(400, "Actions array cannot be empty")
    for action in r.actions:
        v.register_callback(action.data)
    if any(action.data.awaiter != r.id for action in r.actions):
        raise ProtocolError(400, "All action awaiter IDs must match the task ID")


def _check_fence(r: TaskFence, _: Limits) -> None:
    v.required(r.id, _TASK_ID)
    v.version(r.version)
    inner = r.action.data
    if isinstance(inner, dict) and isinstance(inner.get("id"), str) and inner["id"] == r.id:
        raise ProtocolError(400, "Action ID must not equal the task ID")


_TABLE: dict[str, tuple[type[Any], Any]] = {
    "promise.get": (IdRequest, _check_id_promise),
    "promise.create": (PromiseCreate, v.promise_create_with_target),
    "promise.settle": (PromiseSettle, v.promise_settle),
    "promise.register_callback": (RegisterCallback, v.register_callback),
    "promise.register_listener": (RegisterListener, v.register_listener),
    "promise.search": (PromiseSearch, _check_promise_search),
    "task.get": (IdRequest, _check_id_task),
    "task.create": (TaskCreate, v.task_create),
    "task.acquire": (TaskAcquire, _check_acquire),
    "task.release": (TaskRelease, _check_release),
    "task.fulfill": (TaskFulfill, _check_fulfill),
    "task.suspend": (TaskSuspend, _check_suspend),
    "task.fence": (TaskFence, _check_fence),
    "task.heartbeat": (TaskHeartbeat, v.heartbeat),
    "task.halt": (IdRequest, _check_id_task),
    "task.continue": (IdRequest, _check_id_task),
    "task.search": (TaskSearch, _check_task_search),
    "schedule.get": (IdRequest, _check_id_schedule),
    "schedule.create": (ScheduleCreate, v.schedule_create),
    "schedule.delete": (IdRequest, _check_id_schedule),
    "schedule.search": (ScheduleSearch, _check_schedule_search),
    "sustain.queue.create": (qu.QueueCreate, lambda r, _: qu.check_create(r)),
    "sustain.queue.get": (qu.QueueName, lambda r, _: qu.check_name_request(r)),
    "sustain.queue.list": (qu.QueueList, None),
    "sustain.queue.delete": (qu.QueueName, lambda r, _: qu.check_name_request(r)),
    "debug.start": (NoData, None),
    "debug.stop": (NoData, None),
    "debug.reset": (NoData, None),
    "debug.snap": (NoData, None),
    "debug.tick": (DebugTick, None),
    # Sustain extensions (protocol/status.py); an engine may turn them off (EngineConfig).
    STATUS_SET: (StatusSet, check_set),
    STATUS_GET: (StatusGet, check_get),
    "sustain.retry": (RetryRequest, _check_retry),
}

KINDS: frozenset[str] = frozenset(_TABLE)


def parse(kind: str, data: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> Any:
    """Decode and validate ``data`` for ``kind``; raises ``ProtocolError(400, ...)``.

    Unknown kinds raise ``ProtocolError(400, "Unknown operation: <kind>")``.
    """
    entry = _TABLE.get(kind)
    if entry is None:
        raise ProtocolError(400, f"Unknown operation: {kind}")
    cls, check = entry
    try:
        request = msgspec.convert(data, cls, strict=True)
    except msgspec.ValidationError as e:
        if cls is DebugTick:
            raise ProtocolError(400, "Missing or invalid 'time' field") from None
        raise ProtocolError(400, f"Invalid request: {e}") from None
    if check is not None:
        check(request, limits)
    return request


def parse_fence_action(
    action: FenceAction, limits: Limits = DEFAULT_LIMITS
) -> PromiseCreate | PromiseSettle:
    """The inner action of ``task.fence``, after try_timeout (§0.1 item 3): kind check,
    inner parse (``Invalid action data: ...``), inner validation, target address (create)."""
    if action.kind == "promise.create":
        try:
            create = msgspec.convert(action.data, PromiseCreate, strict=True)
        except msgspec.ValidationError as e:
            raise ProtocolError(400, f"Invalid action data: {e}") from None
        v.promise_create_with_target(create, limits)
        return create
    if action.kind == "promise.settle":
        try:
            settle = msgspec.convert(action.data, PromiseSettle, strict=True)
        except msgspec.ValidationError as e:
            raise ProtocolError(400, f"Invalid action data: {e}") from None
        v.promise_settle(settle)
        return settle
    raise ProtocolError(400, "Invalid fence action kind")
