"""try_timeout and the settlement chain (PROTOCOL.md §3.3, §0.1 items 4-8).

Whenever promises leave ``pending`` the chain runs batch-wise over all of them:

1. (promise timeouts are derived from ``pending`` + target: nothing to delete)
2. each settled promise's task, unless already fulfilled, becomes ``fulfilled``; its timeout
   and every callback it registered as awaiter are deleted;
3. callbacks awaiting each settled promise become ready (one per pair), except those whose
   awaiter is itself pending past its deadline: those are dropped (§0 item 6).  Awaiter tasks
   that are ``suspended`` resume (pending, retry at now+R, execute);
4. listeners of each settled promise get an unblock message and are deleted.

Step 2 runs for the whole batch before steps 3-4, so a task fulfilled in this batch is never
resumed (its callbacks are already gone).  try_timeout is the lazy form: the ids an operation
touches that are pending past their deadline time out right there, with or without a target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sustain.engine import promise_machine, queues, task_machine
from sustain.engine.context import Ctx
from sustain.protocol.records import Promise
from sustain.protocol.tags import QUEUE, TARGET
from sustain.store.tx import TaskRow


def try_timeout(ctx: Ctx, ids: Iterable[str]) -> dict[str, Promise | None]:
    """Time out every listed promise that is pending with ``timeoutAt <= now``.

    Returns the listed promises as they are afterwards (None = missing), so callers need not
    read them again; valid only until the caller's next write."""
    found: dict[str, Promise | None] = {}
    expired: list[Promise] = []
    for id in ids:
        if id in found:
            continue
        p = ctx.tx.get_promise(id)
        if p is not None and promise_machine.is_expired(p, ctx.now):
            p = promise_machine.time_out(p)
            expired.append(p)
        found[id] = p
    if expired:
        for p in expired:
            ctx.tx.update_promise(p)
        settle_chain(ctx, expired)
    return found


def settle_chain(ctx: Ctx, settled: list[Promise]) -> None:
    """Steps 2-4 for promises already written in their settled state."""
    tx = ctx.tx
    for p in settled:
        # A promise has a task exactly when it carries a target tag (every way of creating
        # one, §2.2/§2.8/schedules, writes both or neither; tasks are never deleted): a
        # promise without one needs no look-up.
        if TARGET not in p.tags:
            continue
        task = tx.get_task(p.id)
        if task is not None and task.state != "fulfilled":
            tx.put_task(task_machine.fulfill(task))
            tx.delete_callbacks_of(p.id)
            queues.leave(ctx, p.id, p.tags)
    followers = [f for p in settled if QUEUE in p.tags for f in queues.settle_followers(ctx, p)]
    if followers:
        settle_chain(ctx, followers)
    for p in settled:
        _resume_awaiters(ctx, p.id)
        for address in tx.take_listeners(p.id):
            ctx.unblock(p.id, address)


def _resume_awaiters(ctx: Ctx, awaited: str) -> None:
    tx = ctx.tx
    callbacks = tx.callbacks_on(awaited)
    if not callbacks:
        return
    suspended: list[tuple[TaskRow, Mapping[str, str]]] = []
    kept = False  # a not-ready callback is left for mark_ready
    for cb in callbacks:
        if cb.ready:
            continue
        awaiter = tx.get_promise(cb.awaiter)
        if awaiter is None or promise_machine.is_expired(awaiter, ctx.now):
            tx.delete_callback(awaited, cb.awaiter)
            continue
        kept = True
        task = tx.get_task(cb.awaiter)
        if task is not None and task.state == "suspended":
            suspended.append((task, awaiter.tags))
    if kept:
        tx.mark_ready(awaited)
    for task, tags in suspended:
        resume(ctx, task, tags)


def resume(ctx: Ctx, task: TaskRow, tags: Mapping[str, str]) -> None:
    """A suspended task goes back to pending and is offered to its target again (through
    its queue, if its promise names one)."""
    at = task_machine.later(ctx.now, ctx.retry)
    ctx.tx.put_task(task_machine.to_pending(task, "resume", at, ctx.retry))
    ctx.timer(at)
    queues.send(ctx, task.id, task.version, tags)
