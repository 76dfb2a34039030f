"""The background timeout pass (PROTOCOL.md §5.1), also run by ``debug.tick``.

At ``time``, in one transaction: (1) every target promise pending with ``timeoutAt <= time``
times out and the settlement chain runs batch-wise over all of them; (2) pending tasks whose
retry timer is due get their execute re-sent and the timer moved to ``time + R``; (3)
acquired tasks whose lease lapsed go back to pending (pid cleared, ttl reset to R) with an
execute; (4) due schedules fire (``schedules.fire_due``).
"""

from __future__ import annotations

from sustain.engine import promise_machine, queues, schedules, task_machine
from sustain.engine.context import Ctx
from sustain.engine.settlement import settle_chain
from sustain.store.tx import LEASE, RETRY


def tick(ctx: Ctx) -> None:
    tx = ctx.tx
    time = ctx.now
    due = tx.due_promises(time)
    if due:
        settled = [promise_machine.time_out(p) for p in due]
        for p in settled:
            tx.update_promise(p)
        settle_chain(ctx, settled)
    at = task_machine.later(time, ctx.retry)
    for row in tx.due_tasks(time):
        if row.timeout_type == RETRY and row.state == "pending":
            nxt = task_machine.to_pending(row, "retry", at, ctx.retry)
        elif row.timeout_type == LEASE and row.state == "acquired":
            nxt = task_machine.to_pending(row, "lease_expired", at, ctx.retry)
        else:
            continue
        tx.put_task(nxt)
        ctx.timer(at)
        owner = tx.get_promise(row.id)
        tags = owner.tags if owner is not None else {}
        if row.state == "acquired":
            queues.leave(ctx, row.id, tags)  # a lapsed lease frees its slot
        queues.send(ctx, row.id, row.version, tags)
    queues.wake_due(ctx)
    schedules.fire_due(ctx)
