"""Schedules (PROTOCOL.md §2.18-2.21, §5.3): the operations and their firing.

A schedule's only state change is firing: at ``nextRunAt`` it creates one promise from its
template and moves ``nextRunAt`` to the next cron occurrence.  Sustain catches up in one pass
(§0 item 2, §0.1 item 10): a tick at ``time`` fires every occurrence ``<= time``, oldest
first, each creating its own promise (``createdAt`` = that occurrence, born settled when
``time >= occurrence + promiseTimeout``, retry timeout at ``time + R``).  Fired promises
skip ``promise.create``'s validation and ``resonate:delay``; their target address was
validated at ``schedule.create``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from msgspec.structs import replace

from sustain.engine import promise_machine, task_machine
from sustain.engine.context import Ctx
from sustain.engine.cron import Cron, InvalidCron
from sustain.engine.pages import fit
from sustain.engine.promises import start_task
from sustain.engine.responses import Empty, ScheduleData, SchedulesPage
from sustain.engine.task_machine import later
from sustain.protocol import tags as t
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import Limits, schedule_size
from sustain.protocol.records import Schedule, Value
from sustain.protocol.requests import IdRequest, ScheduleCreate, ScheduleSearch
from sustain.store.tx import Page

SCHEDULE_NOT_FOUND = "Schedule not found"
# Catch-up is bounded per schedule and pass, so one transaction stays small after a long
# outage (or a debug clock set far back); the schedule stays due and the next pass, which
# the timer loop runs at once, continues oldest first.
MAX_FIRINGS_PER_TICK = 1000
# The server's fallback when no next occurrence can be computed (§5.3).
_NO_NEXT_STEP = 60_000


# The parsed-cron cache: a few small expressions, so its memory is bounded whatever is
# stored (schedules created before ``limits.max_cron_length``, or under a larger one): at
# most CRON_CACHE entries of at most CRON_CACHE_TEXT characters, a few KiB each parsed.
CRON_CACHE = 256
CRON_CACHE_TEXT = 1024


@lru_cache(maxsize=CRON_CACHE)
def _cached(expr: str) -> Cron:
    return Cron.parse(expr)


def parse_cron(expr: str) -> Cron:
    """``expr`` parsed, from the cache when it is small enough to keep."""
    return _cached(expr) if len(expr) <= CRON_CACHE_TEXT else Cron.parse(expr)


def next_run(expr: str, after: int) -> int | None:
    """The next occurrence strictly after ``after``; None if the expression is invalid or
    has no occurrence within the cron horizon."""
    try:
        return parse_cron(expr).next_after(after)
    except InvalidCron:
        return None


@dataclass(frozen=True, slots=True)
class NewSchedule:
    """A ``schedule.create`` with its cron parsed, before the store (``prepare_create``)."""

    request: ScheduleCreate
    cron: Cron


def prepare_create(req: ScheduleCreate, _: Limits) -> NewSchedule:
    """Parse the cron off the store's writer (its text is bounded by validation already)."""
    try:
        return NewSchedule(req, parse_cron(req.cron))
    except InvalidCron:
        raise ProtocolError(400, "Invalid cron expression") from None


def op_get(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    s = ctx.tx.get_schedule(req.id)
    if s is None:
        raise ProtocolError(404, SCHEDULE_NOT_FOUND)
    return 200, ScheduleData(s)


def op_create(ctx: Ctx, new: NewSchedule) -> tuple[int, object]:
    # Cron before idempotency: re-creating an existing id with a bad cron is a 400 (§0.1 2).
    req = new.request
    at = new.cron.next_after(ctx.now)
    if at is None:
        raise ProtocolError(400, "Invalid cron expression")
    existing = ctx.tx.get_schedule(req.id)
    if existing is not None:
        return 200, ScheduleData(existing)
    s = Schedule(
        req.id,
        req.cron,
        req.promiseId,
        req.promiseTimeout,
        req.promiseParam if req.promiseParam is not None else Value(),
        req.promiseTags if req.promiseTags is not None else {},
        ctx.now,
        at,
    )
    ctx.tx.put_schedule(s)
    ctx.timer(at)
    return 200, ScheduleData(s)


def op_delete(ctx: Ctx, req: IdRequest) -> tuple[int, object]:
    if not ctx.tx.delete_schedule(req.id):
        raise ProtocolError(404, SCHEDULE_NOT_FOUND)
    return 200, Empty()


def op_search(ctx: Ctx, req: ScheduleSearch) -> tuple[int, object]:
    limit = req.limit if req.limit is not None else 10
    page = Page(limit + 1, req.cursor, ctx.max_answer)
    found = ctx.tx.search_schedules(req.tags or {}, page)
    items, more = fit(found, limit, ctx.max_answer, schedule_size)
    return 200, SchedulesPage(items, items[-1].id if more else None)


def fire_due(ctx: Ctx) -> None:
    """Fire every occurrence ``<= ctx.now`` of every due schedule (the tick's step 4)."""
    time = ctx.now
    for s in ctx.tx.due_schedules(time):
        fired = s.nextRunAt
        last = s.lastRunAt
        for _ in range(MAX_FIRINGS_PER_TICK):
            if fired > time:
                break
            _fire(ctx, s, fired)
            last = fired
            nxt = next_run(s.cron, fired)
            fired = nxt if nxt is not None else later(fired, _NO_NEXT_STEP)
        ctx.tx.put_schedule(replace(s, lastRunAt=last, nextRunAt=fired))
        ctx.timer(fired)


def promise_id(template: str, schedule_id: str, fired: int) -> str:
    return template.replace("{{.id}}", schedule_id).replace("{{.timestamp}}", str(fired))


def _fire(ctx: Ctx, s: Schedule, fired: int) -> None:
    tx = ctx.tx
    id = promise_id(s.promiseId, s.id, fired)
    if tx.get_promise(id) is not None:
        return
    tags = dict(s.promiseTags)
    tags[t.SCHEDULE] = s.id
    for name in (t.ORIGIN, t.BRANCH, t.PARENT, t.PREFIX):
        tags[name] = id
    timeout_at = later(fired, s.promiseTimeout)
    expired = ctx.now >= timeout_at
    p = promise_machine.born(
        id, timeout_at, s.promiseParam, tags, created_at=fired, expired=expired
    )
    tx.insert_promise(p)
    ctx.scheduled += 1
    target = tags.get(t.TARGET)
    if target is None:
        return
    if expired:
        tx.put_task(task_machine.fulfilled_task(id, ctx.retry))
    else:
        start_task(ctx, p, target, None)
