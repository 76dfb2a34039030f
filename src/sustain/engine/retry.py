"""``sustain.retry``: run a failed execution again, what resolved in it taken over (a fork).

Theory of operation.  An execution ``wf`` that ended ``rejected``, ``rejected_timedout`` or
``rejected_canceled`` is started again as a new root, ``wf~retry-1`` by default (the first
``<base>~retry-<n>`` that does not exist, ``<base>`` being the id without such a suffix, so
the retry of a retry is ``wf~retry-2``, not ``wf~retry-1~retry-1``).  The new root gets the
old one's param (the same call) and tags, with ``sustain:retry-of = wf`` added.

Before it, in the same transaction, every child of ``wf`` that *resolved* is copied under the
new root: the id ``wf:1.2`` becomes ``wf~retry-1:1.2`` and the id tags (origin, branch,
parent) are moved the same way.  Child ids are the root id plus the call counters
(SDK-WIRE §2.1), so these are exactly the ids a replay of the new root mints, whichever SDK
runs it: a local step is in the new root's preload (its branch), an ``rpc`` child's create
finds it settled, and neither runs again.  Only the topmost resolved promise of a subtree is
copied (below a resolved child nothing is ever replayed); a resolved promise under a failed
child is copied too, so a child workflow that failed resumes past its own finished steps.

``fromStep`` is DBOS's fork: the step of a child is its first counter (``wf:3.1`` is in step
3); only children of the steps before ``fromStep`` are copied, and ``fromStep = 1`` copies
nothing.  A child under an explicit, non-numbered id belongs to no step: it is copied only
without ``fromStep``.  Detached calls (``wf:d<hash>``) are never copied: their ids hash the
caller's id, so the new run mints other ones and starts them again.

Why one operation and not the client copying with ``sustain.batch``: the copies and the new
root must appear together.  A root created before its copies could be run by a worker that
re-executes a step whose copy has not landed yet; a batch has no atomicity, and a client
that dies halfway leaves a partial fork.  Here the whole fork commits or nothing does.

Retrying with an explicit ``newId`` that already holds a retry of the same id answers that
execution (``created: false``): a client that lost the answer can send the request again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from msgspec.structs import replace

from sustain.engine import task_machine
from sustain.engine.context import Ctx
from sustain.engine.promises import PROMISE_NOT_FOUND, create
from sustain.engine.responses import RetryData
from sustain.engine.settlement import try_timeout
from sustain.protocol.cancel import in_detached
from sustain.protocol.errors import ProtocolError
from sustain.protocol.records import Promise
from sustain.protocol.requests import PromiseCreate, RetryRequest
from sustain.protocol.tags import (
    BRANCH,
    DELAY,
    ORIGIN,
    PARENT,
    RETRY_OF,
    TARGET,
    is_prefixed_by,
)
from sustain.store.tx import Page

FAILED = ("rejected", "rejected_timedout", "rejected_canceled")
SUFFIX = "~retry-"
_SUFFIX = re.compile(r"~retry-[0-9]+$")
_STEP = re.compile(r"[.:]([^.:]+)")
MAX_DERIVED = 10_000  # retries of one execution before the derived ids run out
PAGE = 1000
_ID_TAGS = (ORIGIN, BRANCH, PARENT)


def base_of(id: str) -> str:
    """The id a derived retry id is built on: ``id`` without a ``~retry-<n>`` suffix."""
    return _SUFFIX.sub("", id)


def step_of(id: str, root: str) -> int | None:
    """The step of ``root``'s descendant ``id``: its first call counter (None if not a number)."""
    match = _STEP.match(id, len(root))
    if match is None or not match.group(1).isdigit():
        return None
    return int(match.group(1))


def ancestors(id: str, root: str) -> Iterator[str]:
    """The ids strictly between ``root`` and ``id``."""
    for match in re.finditer(r"[.:]", id[len(root) + 1 :]):
        yield id[: len(root) + 1 + match.start()]


def op_retry(ctx: Ctx, req: RetryRequest) -> tuple[int, object]:
    old = try_timeout(ctx, (req.id,))[req.id]
    if old is None:
        raise ProtocolError(404, PROMISE_NOT_FOUND)
    if old.state not in FAILED:
        raise ProtocolError(409, f"Promise is {old.state}: only a failed execution is retried")
    if TARGET not in old.tags:
        raise ProtocolError(422, "The promise does not have a resonate:target tag")
    if req.newId is not None:
        existing = ctx.tx.get_promise(req.newId)
        if existing is not None:
            if existing.tags.get(RETRY_OF) == old.id:
                return 200, RetryData(existing, [], created=False)
            raise ProtocolError(409, "Already exists")
        new_id = req.newId
    else:
        new_id = _derived(ctx, old.id)
    duration = max(old.timeoutAt - old.createdAt, 1)
    timeout_at = req.timeoutAt if req.timeoutAt is not None else ctx.now + duration
    copied = [_copy(ctx, p, old.id, new_id, timeout_at) for p in _resolved(ctx, old, req.fromStep)]
    tags = _moved(old.tags, old.id, new_id)
    tags.pop(DELAY, None)  # the old execution's delay has passed
    tags[RETRY_OF] = old.id
    root = create(ctx, PromiseCreate(new_id, timeout_at, old.param, tags), None)
    return 200, RetryData(root, [id for id in copied if id is not None], created=True)


def _derived(ctx: Ctx, id: str) -> str:
    base = base_of(id)
    for n in range(1, MAX_DERIVED + 1):
        candidate = f"{base}{SUFFIX}{n}"
        if ctx.tx.get_promise(candidate) is None:
            return candidate
    raise ProtocolError(409, f"Too many retries of {base}: give newId")


def _resolved(ctx: Ctx, old: Promise, from_step: int | None) -> list[Promise]:
    """The resolved descendants of ``old`` to copy: topmost of their subtree, not detached,
    in a step before ``from_step``; by id."""
    origin = old.tags.get(ORIGIN, old.id)
    found: dict[str, Promise] = {}
    cursor: str | None = None
    while True:
        page = ctx.tx.search_promises("resolved", {ORIGIN: origin}, Page(PAGE, cursor))
        for p in page:
            if p.id == old.id or not is_prefixed_by(p.id, old.id) or in_detached(p.id, old.id):
                continue
            step = step_of(p.id, old.id)
            if from_step is None or (step is not None and step < from_step):
                found[p.id] = p
        if len(page) < PAGE:
            break
        cursor = page[-1].id
    topmost = (id for id in sorted(found) if not any(a in found for a in ancestors(id, old.id)))
    return [found[id] for id in topmost]


def _moved(tags: dict[str, str], old: str, new: str) -> dict[str, str]:
    """``tags`` with every id tag under ``old`` moved under ``new``."""
    moved = dict(tags)
    for key in _ID_TAGS:
        value = tags.get(key)
        if value is not None and is_prefixed_by(value, old):
            moved[key] = new + value[len(old) :]
    return moved


def _copy(ctx: Ctx, p: Promise, old: str, new: str, timeout_at: int) -> str | None:
    """Insert ``p`` resolved under ``new``; None when that id is taken already (kept as is)."""
    id = new + p.id[len(old) :]
    if ctx.tx.get_promise(id) is not None:
        return None
    copy = replace(
        p,
        id=id,
        tags=_moved(p.tags, old, new),
        timeoutAt=min(ctx.now + max(p.timeoutAt - p.createdAt, 1), timeout_at),
        createdAt=ctx.now,
        settledAt=ctx.now,
    )
    ctx.tx.insert_promise(copy)
    if TARGET in copy.tags:
        # as a promise born settled: its task exists, and is done (§0 item 4)
        ctx.tx.put_task(task_machine.fulfilled_task(id, ctx.retry))
    return id
