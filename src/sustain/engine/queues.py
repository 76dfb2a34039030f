"""Queues in the engine: when a task's execute message may go out (docs/queues.md).

Theory of operation: a promise tagged ``sustain:queue`` puts its task on that queue.
Instead of sending the execute at once (``send``), the engine records an entry for the task,
*waiting*, and lets the queue ``pump``: while the queue has room (fewer running entries than
``concurrency``, the key under ``per_key_concurrency``, the rate's next slot reached) the
best waiting entry becomes *running* and its execute goes into the outbox.  Best: smallest
``sustain:priority`` first; within a priority the key with the fewest running entries (fair
across keys), then FIFO.  A running entry is a slot: it is held from the execute until the
task is fulfilled, suspends, is released or halted, or its lease lapses (``leave``), and each
of those pumps the queue again in the same transaction, so the next task goes out at once.
A released or expired task re-enters its queue at the back; a suspended workflow holds no
slot until it resumes, and then waits for one like any other task.

Every read and write of a queue's entries happens after reading the queue's row
(``Tx.get_queue``), which PostgreSQL locks: concurrent operations on one queue take turns,
on one server or across replicas, so the limits are global.  The rate is smoothed: one
dispatch every period/count, never a burst; when only the rate holds tasks back, the queue's
``wake_at`` brings the timer loop back then (``wake_due``).

A promise tagged with a queue that does not exist runs unlimited (its execute goes out at
once, as if untagged): a queue is configuration, and work must not be stranded by a missing
or deleted one.  ``sustain queues get`` shows such names nowhere; docs/queues.md says so.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec.structs import replace

from sustain.engine import promise_machine
from sustain.engine.context import Ctx
from sustain.protocol.queues import interval, priority_of
from sustain.protocol.records import Promise
from sustain.protocol.tags import DEDUP_OF, QUEUE, QUEUE_KEY, TARGET
from sustain.store.tx import Page, QueueEntry, QueueRow, Tx

# Waiting entries one pump looks at: the window priority order and key fairness see.
SCAN = 128


def send(ctx: Ctx, task_id: str, version: int, tags: Mapping[str, str]) -> None:
    """Offer a pending task to its target: at once, or through its queue."""
    target = tags.get(TARGET, "")
    name = tags.get(QUEUE)
    queue = ctx.tx.get_queue(name) if name is not None else None
    if queue is None:
        ctx.execute(task_id, version, target)
        return
    entry = ctx.tx.get_entry(task_id)
    if entry is not None and entry.running:
        # A retry of a task that holds its slot (nobody acquired it yet): send it again.
        ctx.execute(task_id, version, target)
        return
    if entry is None:
        queue = enqueue(ctx, queue, task_id, version, tags)
    pump(ctx, queue)


def enqueue(
    ctx: Ctx, queue: QueueRow, task_id: str, version: int, tags: Mapping[str, str]
) -> QueueRow:
    """Put the task's waiting entry on ``queue``; the queue with its next FIFO number."""
    ctx.tx.put_entry(
        QueueEntry(
            task_id, queue.name, tags.get(QUEUE_KEY, ""), priority_of(tags), queue.seq,
            version, tags.get(TARGET, ""), ctx.now,
        )
    )  # fmt: skip
    return replace(queue, seq=queue.seq + 1)


def leave(ctx: Ctx, task_id: str, tags: Mapping[str, str]) -> None:
    """The task gives up its place (waiting or running) on its queue; a freed slot goes to
    the next waiting task at once."""
    name = tags.get(QUEUE)
    if name is None:
        return
    tx = ctx.tx
    queue = tx.get_queue(name)  # first: the lock every change of the queue's entries takes
    entry = tx.get_entry(task_id)
    if entry is None:
        return
    tx.delete_entry(task_id)
    if queue is not None and entry.running:
        pump(ctx, queue)


def take(ctx: Ctx, task_id: str, tags: Mapping[str, str]) -> None:
    """The task is acquired: its entry holds a slot (a task acquired without its execute,
    by id from a search, takes one even beyond the limit: it runs whatever the queue says)."""
    name = tags.get(QUEUE)
    if name is None:
        return
    tx = ctx.tx
    if tx.get_queue(name) is None:
        return
    entry = tx.get_entry(task_id)
    if entry is not None and not entry.running:
        tx.put_entry(replace(entry, running=True, since=ctx.now))


def claim(ctx: Ctx, queue: QueueRow, task_id: str, version: int, tags: Mapping[str, str]) -> bool:
    """``task.create`` of a queued task: True when it may be acquired at once (it takes a
    slot, no execute goes out); otherwise it waits on the queue like any other."""
    queue = enqueue(ctx, queue, task_id, version, tags)
    return pump(ctx, queue, claim=task_id)


def pump(ctx: Ctx, queue: QueueRow, claim: str | None = None) -> bool:
    """Dispatch waiting entries while ``queue`` has room; writes the queue back.  True when
    ``claim``'s entry got a slot (it is then not sent: its creator acquires it)."""
    tx = ctx.tx
    running = tx.count_running(queue.name)
    waiting = tx.waiting_entries(queue.name, SCAN)
    per_key: dict[str, int] = {}
    step = interval(queue.rate) if queue.rate is not None else 0
    wake: int | None = None
    claimed = False
    while waiting and (queue.concurrency is None or running < queue.concurrency):
        nxt = _best(tx, queue, waiting, per_key)
        if nxt is None:
            break
        if step and ctx.now < queue.next_at:
            wake = queue.next_at
            ctx.timer(wake)
            break
        waiting.remove(nxt)
        tx.put_entry(replace(nxt, running=True, since=ctx.now))
        if nxt.task_id == claim:
            claimed = True
        else:
            ctx.execute(nxt.task_id, nxt.version, nxt.address)
        running += 1
        per_key[nxt.key] += 1
        queue = replace(
            queue,
            dispatched=queue.dispatched + 1,
            wait_ms=queue.wait_ms + max(0, ctx.now - nxt.since),
            next_at=max(ctx.now, queue.next_at) + step if step else queue.next_at,
        )
    tx.put_queue(replace(queue, wake_at=wake))
    return claimed


def _best(
    tx: Tx, queue: QueueRow, waiting: list[QueueEntry], per_key: dict[str, int]
) -> QueueEntry | None:
    """The next entry to run: best priority, then the key with the fewest running (fair
    across keys), then FIFO; entries whose key is at ``per_key_concurrency`` are skipped."""
    limit = queue.per_key_concurrency
    best: QueueEntry | None = None
    best_rank: tuple[int, int, int] | None = None
    for entry in waiting:  # by (priority, seq)
        if best is not None and entry.priority > best.priority:
            break
        key = entry.key
        if key not in per_key:
            per_key[key] = tx.count_running(queue.name, key)
        if limit is not None and key and per_key[key] >= limit:
            continue
        rank = (entry.priority, per_key[key], entry.seq)
        if best_rank is None or rank < best_rank:
            best, best_rank = entry, rank
    return best


def wake_due(ctx: Ctx) -> None:
    """The timer pass: queues whose rate now lets their next task out."""
    for queue in ctx.tx.due_queues(ctx.now):
        pump(ctx, replace(queue, wake_at=None))


def drain(ctx: Ctx, name: str) -> None:
    """A deleted queue's waiting tasks go out at once (unlimited from now on)."""
    tx = ctx.tx
    while True:
        waiting = tx.waiting_entries(name, SCAN)
        if not waiting:
            return
        for entry in waiting:
            tx.delete_entry(entry.task_id)
            ctx.execute(entry.task_id, entry.version, entry.address)


def duplicate_of(ctx: Ctx, tags: Mapping[str, str]) -> str | None:
    """Deduplication: the pending promise a new one with these tags is attached to instead
    of running (its queue deduplicates, it has a key, and a promise of that queue and key is
    pending and runs on its own), else None."""
    name, key = tags.get(QUEUE), tags.get(QUEUE_KEY)
    if not name or not key or TARGET not in tags:
        return None
    queue = ctx.tx.get_queue(name)
    if queue is None or not queue.dedup:
        return None
    same = ctx.tx.search_promises("pending", {QUEUE: name, QUEUE_KEY: key}, Page(SCAN))
    return next((p.id for p in same if DEDUP_OF not in p.tags and TARGET in p.tags), None)


def settle_followers(ctx: Ctx, settled: Promise) -> list[Promise]:
    """The promises attached to ``settled`` by deduplication, settled as it was (written;
    the caller runs their settlement chain)."""
    tx = ctx.tx
    out = []
    for cb in tx.callbacks_on(settled.id):
        follower = tx.get_promise(cb.awaiter)
        if follower is None or follower.tags.get(DEDUP_OF) != settled.id:
            continue
        tx.delete_callback(settled.id, follower.id)
        if follower.state == "pending" and not promise_machine.is_expired(follower, ctx.now):
            done = promise_machine.follow(follower, settled, ctx.now)
            tx.update_promise(done)
            out.append(done)
    return out
