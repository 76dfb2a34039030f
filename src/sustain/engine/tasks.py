"""The task operations (PROTOCOL.md §2.7-2.17).

Every operation decides its answer (404/409/422) before writing anything except try_timeout's
effects, which are committed whatever the answer (§2.0); the transitions themselves come
from ``task_machine``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sustain.engine import promise_machine, promises, queues, task_machine
from sustain.engine.context import Ctx
from sustain.engine.preload import preload
from sustain.engine.responses import (
    Empty,
    FenceData,
    InnerEnvelope,
    InnerHead,
    PreloadData,
    PromiseData,
    TaskClaim,
    TaskData,
    TasksPage,
)
from sustain.engine.settlement import settle_chain, try_timeout
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import Limits
from sustain.protocol.records import VERSION, Promise, Task, Value
from sustain.protocol.requests import (
    IdRequest,
    PromiseCreate,
    PromiseSettle,
    TaskAcquire,
    TaskCreate,
    TaskFence,
    TaskFulfill,
    TaskHeartbeat,
    TaskRelease,
    TaskSearch,
    TaskSuspend,
    parse_fence_action,
)
from sustain.protocol.tags import QUEUE
from sustain.store.tx import TaskRow, Tx

TASK_NOT_FOUND = "Task not found"
_STALE = "Task version mismatch or invalid state"


def wire(tx: Tx, row: TaskRow) -> Task:
    """The task record with its ``resumes`` (fulfilled tasks keep no callbacks)."""
    return task_machine.record(row, 0 if row.state == "fulfilled" else tx.count_ready(row.id))


def _task(ctx: Ctx, id: str) -> TaskRow:
    row = ctx.tx.get_task(id)
    if row is None:
        raise ProtocolError(404, TASK_NOT_FOUND)
    return row


def _promise(tx: Tx, id: str) -> Promise:
    p = tx.get_promise(id)
    assert p is not None, f"task {id!r} without its promise"
    return p


def _to_pending(ctx: Ctx, row: TaskRow, event: task_machine.Event) -> None:
    """release / continue: pending again, retry timer, execute to the target."""
    at = task_machine.later(ctx.now, ctx.retry)
    ctx.tx.put_task(task_machine.to_pending(row, event, at, ctx.retry))
    ctx.timer(at)
    tags = _promise(ctx.tx, row.id).tags
    queues.leave(ctx, row.id, tags)  # a released task goes to the back of its queue
    queues.send(ctx, row.id, row.version, tags)


def _acquire(ctx: Ctx, row: TaskRow, pid: str, ttl: int) -> TaskClaim:
    tx = ctx.tx
    acquired = task_machine.acquire(row, pid, ttl, ctx.now)
    tx.put_task(acquired)
    tx.delete_ready(row.id)
    ctx.timer(task_machine.later(ctx.now, ttl))
    p = _promise(tx, row.id)
    queues.take(ctx, row.id, p.tags)
    return TaskClaim(task_machine.record(acquired, 0), p, preload(tx, p))


def op_get(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    try_timeout(ctx, (req.id,))
    return 200, TaskData(wire(ctx.tx, _task(ctx, req.id)))


def op_create(ctx: Ctx, req: TaskCreate) -> tuple[int, object]:
    tx = ctx.tx
    data = req.action.data
    try_timeout(ctx, (data.id,))
    p = tx.get_promise(data.id)
    if p is None:
        expired = ctx.now >= data.timeoutAt
        created_at = data.timeoutAt if expired else ctx.now
        tags = data.tags_or_empty
        p = promise_machine.born(
            data.id,
            data.timeoutAt,
            data.param_or_empty,
            tags,
            created_at=created_at,
            expired=expired,
        )
        tx.insert_promise(p)
        if expired:
            row = task_machine.fulfilled_task(p.id, ctx.retry)
        else:
            ctx.timer(p.timeoutAt)
            row = _created(ctx, p, req)
        tx.put_task(row)
        return 200, TaskClaim(task_machine.record(row, 0), p, preload(tx, p))
    row_or_none = tx.get_task(p.id)
    if row_or_none is None:
        raise ProtocolError(422, "The promise does not have a resonate:target tag")
    row = row_or_none
    if row.state == "fulfilled":
        return 200, TaskClaim(task_machine.record(row, 0), p, preload(tx, p))
    if row.state != "pending":
        raise ProtocolError(409, "Already exists")
    return 200, _acquire(ctx, row, req.pid, req.ttl)


def _created(ctx: Ctx, p: Promise, req: TaskCreate) -> TaskRow:
    """The task of a promise ``task.create`` made: acquired by its creator, unless its queue
    has no room (then pending, waiting on the queue; the answer shows it pending)."""
    name = p.tags.get(QUEUE)
    queue = ctx.tx.get_queue(name) if name is not None else None
    if queue is not None and not queues.claim(ctx, queue, p.id, 0, p.tags):
        at = task_machine.later(ctx.now, ctx.retry)
        ctx.timer(at)
        return task_machine.pending_task(p.id, at, ctx.retry)
    ctx.timer(task_machine.later(ctx.now, req.ttl))
    return task_machine.acquired_task(p.id, req.pid, req.ttl, ctx.now)


def op_acquire(ctx: Ctx, req: TaskAcquire) -> tuple[int, object]:
    try_timeout(ctx, (req.id,))
    row = _task(ctx, req.id)
    if row.state != "pending":
        raise ProtocolError(409, "Task is not pending")
    if row.version != req.version:
        raise ProtocolError(409, "Version mismatch")
    return 200, _acquire(ctx, row, req.pid, req.ttl)


def op_release(ctx: Ctx, req: TaskRelease) -> tuple[int, object]:
    try_timeout(ctx, (req.id,))
    row = _task(ctx, req.id)
    if row.state != "acquired" or row.version != req.version:
        raise ProtocolError(409, _STALE)
    _to_pending(ctx, row, "release")
    return 200, Empty()


def op_fulfill(ctx: Ctx, req: TaskFulfill) -> tuple[int, object]:
    tx = ctx.tx
    try_timeout(ctx, (req.id,))
    row = _task(ctx, req.id)
    if row.state != "acquired" or row.version != req.version:
        raise ProtocolError(409, _STALE)
    p = _promise(tx, req.id)
    if p.state == "pending":
        action = req.action.data
        value = action.value if action.value is not None else Value()
        p = promise_machine.settle(p, action.state, value, ctx.now)
        tx.update_promise(p)
        # The chain fulfills the task and deletes the callbacks it registered.
        settle_chain(ctx, [p])
    else:
        tx.put_task(task_machine.fulfill(row))
        tx.delete_callbacks_of(row.id)
        queues.leave(ctx, row.id, p.tags)
    return 200, PromiseData(p)


def op_suspend(ctx: Ctx, req: TaskSuspend) -> tuple[int, object]:
    tx = ctx.tx
    awaited_ids = list(dict.fromkeys(a.data.awaited for a in req.actions))
    try_timeout(ctx, [req.id, *awaited_ids])
    row = _task(ctx, req.id)
    if row.state != "acquired" or row.version != req.version:
        raise ProtocolError(409, "Task is not acquired or version mismatch")
    awaited: list[Promise] = []
    for id in awaited_ids:
        p = tx.get_promise(id)
        if p is None:
            raise ProtocolError(422, "Awaited promise not found")
        awaited.append(p)
    tx.delete_ready(req.id)
    if any(p.state != "pending" for p in awaited):
        # 300: keep the lease and executing; register nothing.
        return 300, PreloadData(preload(tx, _promise(tx, req.id)))
    for p in awaited:
        tx.add_callback(p.id, req.id, False)
    tx.put_task(task_machine.suspend(row))
    queues.leave(ctx, req.id, _promise(tx, req.id).tags)  # a suspended workflow holds no slot
    return 200, Empty()


@dataclass(frozen=True, slots=True)
class Fence:
    """A ``task.fence`` with its inner action parsed (or refused) before the store: the
    parse runs off the writer, its answer is only given after try_timeout (§0.1 item 3)."""

    request: TaskFence
    inner: PromiseCreate | PromiseSettle | ProtocolError


def prepare_fence(req: TaskFence, limits: Limits) -> Fence:
    try:
        return Fence(req, parse_fence_action(req.action, limits))
    except ProtocolError as error:
        return Fence(req, error)


def op_fence(ctx: Ctx, fence: Fence) -> tuple[int, object]:
    tx = ctx.tx
    req = fence.request
    data = req.action.data
    inner_id = data.get("id") if isinstance(data, dict) else None
    try_timeout(ctx, (req.id, inner_id) if isinstance(inner_id, str) else (req.id,))
    inner = fence.inner
    if isinstance(inner, ProtocolError):
        raise inner
    row = _task(ctx, req.id)
    if row.state != "acquired" or row.version != req.version:
        raise ProtocolError(409, "Version mismatch")
    status = 200
    body: PromiseData | str
    # Read the inner promise again: try_timeout's answer covers the raw id, and the inner
    # id is the same string only when the parse succeeded, which is now known.
    found = tx.get_promise(inner.id)
    if isinstance(inner, PromiseCreate):
        body = PromiseData(promises.create(ctx, inner, found))
    else:
        settled = promises.settle(ctx, inner, found)
        if settled is None:
            status, body = 404, promises.PROMISE_NOT_FOUND
        else:
            body = PromiseData(settled)
    envelope = InnerEnvelope(req.action.kind, InnerHead(ctx.corr_id, status, VERSION), body)
    # "sustain:preload": false skips the branch walk entirely: answering the whole branch on
    # every fence is what made a workflow of n fenced steps cost O(n^2) promise records.
    branch = preload(tx, _promise(tx, req.id)) if req.want_preload else []
    return 200, FenceData(envelope, branch)


def op_heartbeat(ctx: Ctx, req: TaskHeartbeat) -> tuple[int, object]:
    tx = ctx.tx
    for entry in req.tasks:
        if not entry.id:
            continue
        row = tx.get_task(entry.id)
        if (
            row is not None
            and row.state == "acquired"
            and row.version == entry.version
            and row.pid == req.pid
        ):
            beat = task_machine.heartbeat(row, ctx.now)
            tx.put_task(beat)
            if beat.timeout_at is not None:
                ctx.timer(beat.timeout_at)
    return 200, Empty()


def op_halt(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    try_timeout(ctx, (req.id,))
    row = _task(ctx, req.id)
    if row.state == "fulfilled":
        raise ProtocolError(409, "Task is fulfilled")
    if row.state != "halted":
        ctx.tx.put_task(task_machine.halt(row))
        queues.leave(ctx, req.id, _promise(ctx.tx, req.id).tags)
    return 200, Empty()


def op_continue(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    try_timeout(ctx, (req.id,))
    row = _task(ctx, req.id)
    if row.state != "halted":
        raise ProtocolError(409, "Task is not halted")
    _to_pending(ctx, row, "continue")
    return 200, Empty()


def op_search(ctx: Ctx, req: TaskSearch) -> tuple[int, object]:
    tx = ctx.tx
    limit = req.limit if req.limit is not None else 100
    rows: list[TaskRow] = []
    # The Tx has no task search: tasks are few compared with promises and this op is rare.
    for row in tx.all_tasks():
        if req.cursor is not None and row.id <= req.cursor:
            continue
        if req.state is None or row.state == req.state:
            rows.append(row)
            if len(rows) > limit:
                break
    tasks = [wire(tx, row) for row in rows[:limit]]
    if len(rows) > limit:
        return 200, TasksPage(tasks, tasks[-1].id)
    return 200, TasksPage(tasks)
