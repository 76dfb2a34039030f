"""The promise operations (PROTOCOL.md §2.1-2.6) and promise creation shared with
``task.fence`` (fenced create)."""

from __future__ import annotations

from sustain.engine import promise_machine, queues, task_machine
from sustain.engine.context import Ctx
from sustain.engine.pages import fit
from sustain.engine.responses import PromiseData, PromisesPage
from sustain.engine.settlement import resume, settle_chain, try_timeout
from sustain.engine.task_machine import later
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import promise_size
from sustain.protocol.records import Promise, Value
from sustain.protocol.requests import (
    IdRequest,
    PromiseCreate,
    PromiseSearch,
    PromiseSettle,
    RegisterCallback,
    RegisterListener,
)
from sustain.protocol.tags import DEDUP_OF, DELAY, TARGET
from sustain.protocol.validation import parse_delay
from sustain.store.tx import Page

PROMISE_NOT_FOUND = "Promise not found"


def create(ctx: Ctx, req: PromiseCreate, existing: Promise | None) -> Promise:
    """promise.create after try_timeout (``existing`` = the promise it found): idempotent on
    the id, otherwise a new promise (born settled when its deadline passed) and, with a
    target, its task."""
    tx = ctx.tx
    if existing is not None:
        return existing
    tags = req.tags_or_empty
    expired = ctx.now >= req.timeoutAt
    created_at = req.timeoutAt if expired else ctx.now
    original = None if expired else queues.duplicate_of(ctx, tags)
    if original is not None:
        tags = {**tags, DEDUP_OF: original}
    p = promise_machine.born(
        req.id, req.timeoutAt, req.param_or_empty, tags, created_at=created_at, expired=expired
    )
    tx.insert_promise(p)
    target = tags.get(TARGET)
    if target is not None:
        if expired:
            tx.put_task(task_machine.fulfilled_task(p.id, ctx.retry))
        elif original is not None:
            # no task: it settles as the original does (settle_chain, queues.py)
            ctx.timer(p.timeoutAt)
            tx.add_callback(original, p.id, False)
        else:
            delay = tags.get(DELAY)
            start_task(ctx, p, target, parse_delay(delay) if delay is not None else None)
    return p


def start_task(ctx: Ctx, p: Promise, target: str, delay_at: int | None) -> None:
    """The task of a new pending target promise: pending v0 with a retry timer and an
    execute, unless ``resonate:delay`` is still ahead (then the first retry at the delay
    dispatches it, §0 item 1)."""
    ctx.timer(p.timeoutAt)
    delayed = delay_at is not None and ctx.now < delay_at
    retry_at = delay_at if delay_at is not None and delayed else later(ctx.now, ctx.retry)
    ctx.tx.put_task(task_machine.pending_task(p.id, retry_at, ctx.retry))
    ctx.timer(retry_at)
    if not delayed:
        queues.send(ctx, p.id, 0, p.tags)


def settle(ctx: Ctx, req: PromiseSettle, p: Promise | None) -> Promise | None:
    """promise.settle after try_timeout (``p`` = the promise it found); None when the
    promise does not exist."""
    if p is None:
        return None
    if p.state != "pending":
        return p
    value = req.value if req.value is not None else Value()
    settled = promise_machine.settle(p, req.state, value, ctx.now)
    ctx.tx.update_promise(settled)
    settle_chain(ctx, [settled])
    return settled


def op_get(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    p = try_timeout(ctx, (req.id,))[req.id]
    if p is None:
        raise ProtocolError(404, PROMISE_NOT_FOUND)
    return 200, PromiseData(p)


def op_create(ctx: Ctx, req: PromiseCreate) -> tuple[int, object]:
    existing = try_timeout(ctx, (req.id,))[req.id]
    return 200, PromiseData(create(ctx, req, existing))


def op_settle(ctx: Ctx, req: PromiseSettle) -> tuple[int, object]:
    found = try_timeout(ctx, (req.id,))[req.id]
    p = settle(ctx, req, found)
    if p is None:
        raise ProtocolError(404, PROMISE_NOT_FOUND)
    return 200, PromiseData(p)


def op_register_callback(ctx: Ctx, req: RegisterCallback) -> tuple[int, object]:
    tx = ctx.tx
    try_timeout(ctx, (req.awaited, req.awaiter))
    awaited = tx.get_promise(req.awaited)
    if awaited is None:
        raise ProtocolError(404, "Awaited promise not found")
    awaiter = tx.get_promise(req.awaiter)
    if awaiter is None:
        raise ProtocolError(422, "Awaiter promise not found")
    target = awaiter.tags.get(TARGET)
    if target is None:
        raise ProtocolError(422, "Awaiter promise has no resonate:target tag")
    if awaiter.state == "pending":
        if awaited.state == "pending":
            tx.add_callback(awaited.id, awaiter.id, False)
        else:
            task = tx.get_task(awaiter.id)
            if task is not None:
                if task.state == "suspended":
                    # §0 item 3: resume, but record no ready callback.
                    resume(ctx, task, awaiter.tags)
                elif task.state in ("pending", "acquired"):
                    tx.add_callback(awaited.id, awaiter.id, True)
    return 200, PromiseData(awaited)


def op_register_listener(ctx: Ctx, req: RegisterListener) -> tuple[int, object]:
    try_timeout(ctx, (req.awaited,))
    p = ctx.tx.get_promise(req.awaited)
    if p is None:
        raise ProtocolError(404, "Awaited promise not found")
    if p.state == "pending":
        ctx.tx.add_listener(p.id, req.address)
    return 200, PromiseData(p)


def op_search(ctx: Ctx, req: PromiseSearch) -> tuple[int, object]:
    limit = req.limit if req.limit is not None else 100
    page = Page(limit + 1, req.cursor, ctx.max_answer)
    found = ctx.tx.search_promises(req.state, req.tags or {}, page)
    items, more = fit(found, limit, ctx.max_answer, promise_size)
    return 200, PromisesPage(items, items[-1].id if more else None)
