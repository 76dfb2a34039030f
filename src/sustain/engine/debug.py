"""Debug operations (PROTOCOL.md §2.22): reset, tick and the snapshot.

The snapshot's shape and order are part of the contract (§0.1 item 11): promises by id;
promise timeouts (pending target promises) by id; not-ready callbacks by (awaiter, awaited);
listeners by (promise id, address); tasks by id; task timeouts by id; messages = executes by
task id, then unblocks by (promise id, address), with ``head: {}`` and the promise as it is
now.  ``debug.start``/``debug.stop`` only matter to the server's loops.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from sustain.engine import timeouts
from sustain.engine.context import Ctx
from sustain.engine.responses import Empty
from sustain.engine.tasks import wire
from sustain.protocol.errors import ProtocolError
from sustain.protocol.records import (
    ExecuteData,
    Message,
    OutboxEntry,
    Promise,
    Task,
    TaskRef,
    UnblockData,
)
from sustain.protocol.requests import DebugTick, NoData
from sustain.protocol.tags import TARGET


class PromiseTimeout(msgspec.Struct):
    id: str
    timeout: int


class CallbackRef(msgspec.Struct):
    awaiter: str
    awaited: str


class ListenerRef(msgspec.Struct):
    id: str
    address: str


class TaskTimeout(msgspec.Struct):
    id: str
    type: Literal[0, 1]
    timeout: int


class Snap(msgspec.Struct):
    promises: list[Promise]
    promiseTimeouts: list[PromiseTimeout]
    callbacks: list[CallbackRef]
    listeners: list[ListenerRef]
    tasks: list[Task]
    taskTimeouts: list[TaskTimeout]
    messages: list[OutboxEntry]


def op_start_stop(ctx: Ctx, req: NoData) -> tuple[int, object]:
    return 200, Empty()


def op_reset(ctx: Ctx, req: NoData) -> tuple[int, object]:
    ctx.tx.reset()
    return 200, Empty()


def tick_op(ctx: Ctx, req: DebugTick, debug_time: int | None) -> tuple[int, object]:
    if debug_time is not None and debug_time != req.time:
        raise ProtocolError(400, "resonate:debug_time must equal data.time")
    ctx.now = req.time
    timeouts.tick(ctx)
    return 200, []


def op_snap(ctx: Ctx, req: NoData) -> tuple[int, object]:
    tx = ctx.tx
    promises = tx.all_promises()
    by_id = {p.id: p for p in promises}
    rows = tx.all_tasks()
    messages = [
        OutboxEntry(e.address, Message("execute", {}, ExecuteData(TaskRef(e.task_id, e.version))))
        for e in tx.all_executes()
    ]
    for u in tx.all_unblocks():
        p = by_id.get(u.promise_id)
        if p is not None:
            messages.append(OutboxEntry(u.address, Message("unblock", {}, UnblockData(p))))
    snap = Snap(
        promises=promises,
        promiseTimeouts=[
            PromiseTimeout(p.id, p.timeoutAt)
            for p in promises
            if p.state == "pending" and TARGET in p.tags
        ],
        callbacks=[CallbackRef(c.awaiter, c.awaited) for c in tx.all_callbacks() if not c.ready],
        listeners=[ListenerRef(x.promise_id, x.address) for x in tx.all_listeners()],
        tasks=[wire(tx, row) for row in rows],
        taskTimeouts=[
            TaskTimeout(row.id, row.timeout_type, row.timeout_at)
            for row in rows
            if row.timeout_type is not None and row.timeout_at is not None
        ],
        messages=messages,
    )
    return 200, snap
