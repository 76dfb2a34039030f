"""Patches: ``ctx.patched(name)`` and ``ctx.deprecate_patch(name)`` (docs/deploying.md).

A patch lets new code take a new branch while executions that already went past that point
with the old code replay the old branch.  The decision is recorded in the history as a
*marker*: a resolved local child at the slot the next durable call would take (the
context's counter + 1), tagged ``sustain:patch = <name>``, whose param names the function
``sustain.patch:<name>`` (so a replay that finds it where it expects a step reports a
``NondeterminismError`` naming the patch).

``patched(name)`` looks at that slot:

* the marker of ``name`` is there: the execution chose the new branch before; it consumes
  the slot and answers True;
* another record is there (a step the old code made next): the execution went past this
  point without the patch; nothing is consumed, the old branch replays with the old ids;
  answers False;
* nothing: the execution reaches this point now, with the new code; the marker is written
  (a fenced ``promise.create``, which is idempotent: if a record appeared there meanwhile it
  answers with it and the rule above applies) and it answers True.  The pass makes that
  write (``ReplayPass.marker``): a history replay makes none, and stops there as at any
  call at its frontier (``HistoryPass.marker``, docs/replay.md).

Remote children (rpc, sleep, promise) have branches of their own and are not in a task's
preload, so "nothing there" needs that one create: the answer is a future to ``yield`` or
``await``.  A future tested as a bool raises ``DefinitionError`` (``if ctx.patched(x):``
without the ``yield``/``await`` would always be true).  No durable call may be made in the
same context while the answer is not known: the next call's id depends on it.

``deprecate_patch(name)`` is the cleanup step once no execution runs the old branch: it
consumes the slot if the marker of ``name`` is there (an execution that took the new branch
replays with its ids) and writes nothing otherwise, so new executions carry no marker and a
later deploy may drop the call.  Markers are local children: the preload of a Sustain
server holds them, so this needs no request and no ``yield``.

Official SDK workers never replay a Sustain function; a marker is one more resolved local
child to them, and an unknown tag, both ignored (SDK-WIRE §2.1-2.2).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sustain.errors import DefinitionError
from sustain.sdk import codec, ids
from sustain.sdk.futures import PENDING, DurableFuture, Outcome

if TYPE_CHECKING:
    from sustain.sdk.context import Context

PATCH = "sustain:patch"
MAX_NAME = 255


class PatchFuture(DurableFuture):
    """The answer of ``ctx.patched``: a bool once yielded or awaited, never before."""

    __slots__ = ("caller", "name")

    def __init__(self, id: str, task: asyncio.Task[Outcome], name: str, caller: str) -> None:
        super().__init__(id, task)
        self.name = name
        self.caller = caller

    def __bool__(self) -> bool:
        raise DefinitionError(
            self.caller,
            f"`if ctx.patched({self.name!r})` tests the future, which is always true: write "
            f"`if (yield ctx.patched({self.name!r}))` in a generator or "
            f"`if await ctx.patched({self.name!r})` in an async def",
        )


def marker_func(name: str) -> str:
    """The function name a marker records (what a nondeterminism error shows)."""
    return f"sustain.patch:{name}"


def is_marker(record: Mapping[str, Any], name: str) -> bool:
    tags = record.get("tags") or {}
    return tags.get(PATCH) == name


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        raise ValueError(f"a patch name must be a non-empty string of at most {MAX_NAME} chars")
    return name


def patched(ctx: Context, name: str) -> PatchFuture:
    check_name(name)
    slot = ids.child(ctx.id, ctx.calls + 1)
    ctx._counter.patching = name
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # a plain def runs in a thread, where no loop runs
        ctx._counter.patching = None
        raise DefinitionError(
            ctx.info.func_name,
            "ctx.patched() is a durable call: make the function a generator or an async def",
        ) from None
    pass_ = ctx._pass
    task = loop.create_task(pass_.guard(_decide(ctx, slot, name)))
    pass_.spawned.append(task)
    return PatchFuture(slot, task, name, ctx.info.func_name)


async def _decide(ctx: Context, slot: str, name: str) -> Outcome:
    pass_ = ctx._pass
    try:
        record = pass_.cache.get(slot)
        if record is None:
            tags = ids.local_tags(slot, ids.origin_of(ctx.id), ctx.branch, ctx.id)
            tags[PATCH] = name
            data = {"id": slot, "timeoutAt": ctx.info.timeout_at,
                    "param": codec.step_param(marker_func(name), 1), "tags": tags}  # fmt: skip
            record = await pass_.marker(data, ctx.calls + 1)
            if record is None:  # a history replay at its frontier: it stops here
                return Outcome(PENDING)
        if not is_marker(record, name):
            return Outcome(False)
        ctx._counter.n += 1
        if record["state"] == "pending":  # written by a pass that ended before its settle
            pass_._chain_settle(slot, "resolved", codec.encode(True, slot))
        return Outcome(True)
    finally:
        ctx._counter.patching = None


def deprecate(ctx: Context, name: str) -> None:
    check_name(name)
    if ctx._counter.patching is not None:
        raise waiting(ctx, "ctx.deprecate_patch()")
    record = ctx._pass.cache.get(ids.child(ctx.id, ctx.calls + 1))
    if record is not None and is_marker(record, name):
        ctx._counter.n += 1


def waiting(ctx: Context, method: str) -> DefinitionError:
    """A durable call made while a ``patched()`` answer is still unknown."""
    name = ctx._counter.patching
    return DefinitionError(
        ctx.info.func_name,
        f"{method} was made before the answer of ctx.patched({name!r}) was known: "
        f"yield or await ctx.patched({name!r}) first (the next call's id depends on it)",
    )
