"""The ``sustain.queue.*`` operations (docs/protocol.md, "Sustain's queue operations").

``create`` makes a queue or changes its limits (its tasks and counters stay; raised limits
dispatch at once); ``get`` answers the queue with what it holds now; ``list`` every queue;
``delete`` removes it and sends its waiting tasks at once (from then on the name is
unknown and its tasks run unlimited, engine/queues.py).
"""

from __future__ import annotations

import msgspec
from msgspec.structs import replace

from sustain.engine import queues
from sustain.engine.context import Ctx
from sustain.engine.responses import Empty
from sustain.protocol.errors import ProtocolError
from sustain.protocol.queues import QUEUE_NOT_FOUND, QueueCreate, QueueList, QueueName
from sustain.store.tx import QueueRow, Tx


class QueueInfo(msgspec.Struct, omit_defaults=True):
    """A queue on the wire: its limits, what it holds now and its counters."""

    name: str
    createdAt: int
    running: int
    waiting: int
    waitingByPriority: dict[str, int]
    dispatched: int
    meanWaitMs: int
    waitedMs: int  # summed over the tasks let out (meanWaitMs is this / dispatched)
    concurrency: int | None = None
    perKeyConcurrency: int | None = None
    rate: str | None = None
    nextDispatchAt: int | None = None
    dedup: bool = False


class QueueData(msgspec.Struct):
    queue: QueueInfo


class QueuesData(msgspec.Struct):
    queues: list[QueueInfo]


def info(tx: Tx, q: QueueRow) -> QueueInfo:
    running = 0
    by_priority: dict[str, int] = {}
    for is_running, priority, n in tx.queue_counts(q.name):
        if is_running:
            running += n
        else:
            by_priority[str(priority)] = n
    return QueueInfo(
        q.name,
        q.created_at,
        running,
        sum(by_priority.values()),
        by_priority,
        q.dispatched,
        q.wait_ms // q.dispatched if q.dispatched else 0,
        q.wait_ms,
        q.concurrency,
        q.per_key_concurrency,
        q.rate,
        q.wake_at,
        q.dedup,
    )


def op_create(ctx: Ctx, req: QueueCreate) -> tuple[int, object]:
    tx = ctx.tx
    found = tx.get_queue(req.name)
    q = found if found is not None else QueueRow(req.name, created_at=ctx.now)
    q = replace(
        q,
        concurrency=req.concurrency,
        per_key_concurrency=req.per_key_concurrency,
        rate=req.rate,
        dedup=req.dedup,
        # A rate that changes starts afresh: the old one's next slot no longer applies.
        next_at=q.next_at if q.rate == req.rate else 0,
    )
    queues.pump(ctx, q)  # raised limits let waiting tasks out now
    return 200, QueueData(info(tx, _get(tx, req.name)))


def _get(tx: Tx, name: str) -> QueueRow:
    q = tx.get_queue(name)
    if q is None:
        raise ProtocolError(404, QUEUE_NOT_FOUND)
    return q


def op_get(ctx: Ctx, req: QueueName) -> tuple[int, object]:
    return 200, QueueData(info(ctx.tx, _get(ctx.tx, req.name)))


def op_list(ctx: Ctx, req: QueueList) -> tuple[int, object]:
    del req
    return 200, QueuesData([info(ctx.tx, q) for q in ctx.tx.all_queues()])


def op_delete(ctx: Ctx, req: QueueName) -> tuple[int, object]:
    _get(ctx.tx, req.name)
    ctx.tx.delete_queue(req.name)
    queues.drain(ctx, req.name)
    return 200, Empty()
