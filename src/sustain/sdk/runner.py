"""``run_task``: drive one held task to fulfill, suspend, release or halt (see replay.py).

It never raises: every outcome is a protocol request, and a lost lease is simply dropped.
It returns the root promise record when this process fulfilled it (handles use it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from sustain.errors import (
    Cancel,
    DecodingError,
    FunctionNotFoundError,
    NondeterminismError,
    SerializationError,
    Suspend,
    SustainError,
)
from sustain.sdk import codec, ids, status, telemetry
from sustain.sdk.context import Context, Info
from sustain.sdk.invoke import call_with_retry, returned
from sustain.sdk.network import NetworkStopped
from sustain.sdk.replay import (
    HALT_AFTER_MISSES,
    Released,
    ReplayPass,
    WorkerState,
)

log = logging.getLogger(__name__)

# How long a pass runs before it watches its promise for a settle by someone else (a cancel).
CANCEL_GRACE_S = 1.0
# The longest pause between two deliveries of a paused execution (``_pause``).
PAUSE_CAP_S = 30.0


async def run_task(
    env: WorkerState, task: dict[str, Any], promise: dict[str, Any], preload: list[dict[str, Any]]
) -> dict[str, Any] | None:
    id, version = task["id"], int(task["version"])
    try:
        run = _run(env, id, version, promise, preload)
        record = await telemetry.task(env.pid, task, promise, run)
        env.failures.pop(id, None)
        return record
    except (Cancel, NetworkStopped):
        return None
    except Exception:  # a bug or a platform failure: give the task back, never lose it
        failures = env.failures[id] = env.failures.get(id, 0) + 1
        pause = min(2.0 ** (failures - 1), 30.0)  # no hot acquire/release loop
        log.exception("task %s failed; releasing it in %.0fs", id, pause)
        await env.clock.sleep(pause)
        await _request(env, "task.release", {"id": id, "version": version})
        return None


async def _request(env: WorkerState, kind: str, data: dict[str, Any]) -> Any:
    try:
        return await env.network.request(kind, data)
    except NetworkStopped:
        return None


async def _fulfill(
    env: WorkerState, id: str, version: int, state: str, value: dict[str, Any] | None
) -> dict[str, Any] | None:
    settle = {"id": id, "state": state, "value": value or {}}
    answer = await env.network.request(
        "task.fulfill",
        {"id": id, "version": version,
         "action": {"kind": "promise.settle", "head": {}, "data": settle}},
    )  # fmt: skip
    if answer.status == 200:
        record: dict[str, Any] = answer.data["promise"]
        return record
    log.info("task.fulfill %s answered %s %s", id, answer.status, answer.data)
    return None


async def _run(
    env: WorkerState, id: str, version: int, promise: dict[str, Any], preload: list[dict[str, Any]]
) -> dict[str, Any] | None:
    state = promise["state"]
    tags = promise.get("tags") or {}
    if state != "pending":
        settled = "resolved" if state == "resolved" else "rejected"
        return await _fulfill(env, id, version, settled, promise.get("value"))
    if tags.get(ids.TIMER) == "true":
        return None  # the server resolves timers; the lease simply lapses
    try:
        inv = codec.decode_invocation(promise.get("param"), id)
        function = env.registry.get(inv.func, inv.version)
    except DecodingError as exc:
        return await _fulfill(env, id, version, "rejected", codec.encode_error(exc))
    except FunctionNotFoundError as exc:
        await _unknown(env, id, version, exc)
        return None
    # The arguments as the function's annotations ask (a datetime, not its string), once
    # for every pass of this run.
    args, kwargs = function.params.convert(function.name, inv.args, inv.kwargs)
    cache = {p["id"]: p for p in preload}
    while True:
        p = ReplayPass(env, id, version, cache)
        branch = tags.get(ids.BRANCH) or id
        info = Info(
            id, tags.get(ids.PARENT, id), ids.origin_of(id), branch, int(promise["timeoutAt"]),
            function.name, function.version, 1,
        )  # fmt: skip
        ctx = Context(p, info, branch)
        value: Any = None
        error: BaseException | None = None
        suspended = False
        try:
            body = call_with_retry(function, ctx, args, kwargs, env.clock)
            value = await _watched(env, id, p, body)
        except Suspend:
            suspended = True
        except Cancel:
            await p.join()
            await _give_back(env, id, version, p.failure)
            return None
        except Exception as exc:
            error = exc
        await p.join()
        if isinstance(p.failure, (Cancel, Released)):
            await _give_back(env, id, version, p.failure)
            return None
        if p.failure is not None:
            raise p.failure
        diverged = p.nondeterminism
        if diverged is not None and env.pause_mismatch:
            await _pause(env, id, version, f"{type(diverged).__name__}: {diverged}")
            return None
        env.misses.pop(id, None)  # this code could replay it: no longer a miss
        if diverged is not None:
            error = diverged
        elif p.todos:
            answer = await _suspend(env, id, version, list(p.todos))
            if answer is None:
                return None
            for record in answer:
                cache[record["id"]] = record
            continue  # 300: an awaited promise already settled; replay now
        elif suspended:
            continue
        if error is not None:
            return await _fulfill(env, id, version, "rejected", codec.encode_error(error, id))
        try:
            wire = codec.encode(value, id)
        except SerializationError as exc:
            error = returned(function.name, value, exc)
            return await _fulfill(env, id, version, "rejected", codec.encode_error(error, id))
        except SustainError as exc:
            return await _fulfill(env, id, version, "rejected", codec.encode_error(exc, id))
        return await _fulfill(env, id, version, "resolved", wire)


async def _watched(env: WorkerState, id: str, p: ReplayPass, body: Coroutine[Any, Any, Any]) -> Any:
    """Run a pass's body; stop it if the task's promise is settled by someone else meanwhile.

    A cancel (protocol/cancel.py) or any external settle fulfils the task, and this worker
    would otherwise learn it only at its next task operation: never, while a leaf runs for
    hours or a step backs off between retries.  So a body still running after
    ``CANCEL_GRACE_S`` watches the promise through the worker's listener (a short pass pays
    one sleeping task); once it settles, the body and the pass's children are cancelled
    (``asyncio.CancelledError`` inside a running async leaf; a sync leaf's thread cannot be
    interrupted, so it finishes and its result is dropped) and the pass ends with ``Cancel``,
    writing nothing: the task is fulfilled already.

    The body runs in this very task (no task of its own per pass): the watch cancels this
    task while it awaits the body, and ``uncancel`` takes that request back once it has
    become ``Cancel``.
    """
    watch = env.watch
    if watch is None:  # no listener here (serverless): the next task operation tells
        return await body
    me = asyncio.current_task()
    assert me is not None
    awaiting = True  # a done-callback may already be queued when the body ends
    canceled = False

    def settled(done: asyncio.Future[dict[str, Any]]) -> None:
        nonlocal canceled
        if not awaiting or done.cancelled() or done.exception() is not None:
            return
        log.info("task %s: its promise was settled elsewhere (%s); stopping its pass",
                 id, done.result().get("state"))  # fmt: skip
        canceled = True
        me.cancel()
        for child in p.spawned:
            child.cancel()

    async def after_grace() -> dict[str, Any]:
        await env.clock.sleep(CANCEL_GRACE_S)  # the SDK's clock: a test's fake time too
        return await watch(id)

    watcher = asyncio.ensure_future(after_grace())
    watcher.add_done_callback(settled)
    try:
        return await body
    except asyncio.CancelledError:
        if canceled:
            raise Cancel() from None
        raise
    finally:
        awaiting = False
        if canceled:  # also when the body swallowed the CancelledError and returned
            me.uncancel()
        watcher.remove_done_callback(settled)
        watcher.cancel()


async def _give_back(
    env: WorkerState, id: str, version: int, failure: BaseException | None
) -> None:
    """A pass abandoned because the worker stops is released (another worker takes the task
    now); one abandoned because the lease is gone needs nothing."""
    if isinstance(failure, Released):
        await _request(env, "task.release", {"id": id, "version": version})


async def _suspend(env: WorkerState, id: str, version: int, todos: list[str]) -> list[Any] | None:
    """None when suspended (or the lease is gone); the new preload on a 300."""
    actions = [
        {"kind": "promise.register_callback", "head": {}, "data": {"awaited": t, "awaiter": id}}
        for t in todos
    ]
    answer = await env.network.request(
        "task.suspend", {"id": id, "version": version, "actions": actions}
    )
    if answer.status == 300:
        preload: list[Any] = answer.data.get("preload") or []
        return preload
    if answer.status in (200, 404, 409):
        return None
    raise SustainError(f"task.suspend {id}: {answer.status} {answer.data}")


async def _unknown(env: WorkerState, id: str, version: int, exc: FunctionNotFoundError) -> None:
    """Back off, then release (another worker may know the function); when mismatches fail
    (``pause_mismatch`` off) halt after a few, else keep it paused (``_pause``)."""
    if env.pause_mismatch:
        await _pause(env, id, version, f"{type(exc).__name__}: {exc} (worker {env.pid!r})")
        return
    misses = env.misses[id] = env.misses.get(id, 0) + 1
    if misses >= HALT_AFTER_MISSES:
        log.error("halting task %s: %s (after %d deliveries)", id, exc, misses)
        env.misses.pop(id, None)
        await _request(env, "task.halt", {"id": id})
        return
    log.warning("task %s: %s; releasing it in %ss", id, exc, misses)
    await env.clock.sleep(misses)
    await _request(env, "task.release", {"id": id, "version": version})


async def _pause(env: WorkerState, id: str, version: int, reason: str) -> None:
    """Keep an execution that this code cannot run pending: record why (its status record),
    wait a growing pause (1 s doubling to ``PAUSE_CAP_S``) with the task held, then release
    it, so a worker with fixed code (this one after a deploy, or another member of the
    group) takes it.  Never a hot acquire/release loop, never a rejection."""
    misses = env.misses[id] = env.misses.get(id, 0) + 1
    pause = min(2.0 ** (misses - 1), PAUSE_CAP_S)
    log.warning("execution %s paused (delivery %d): %s; releasing it in %.0fs",
                id, misses, reason, pause)  # fmt: skip
    next_at = env.clock.now() + int(pause * 1000)
    await env.status.write(id, status.paused(reason, misses, next_at))
    stop = asyncio.ensure_future(env.stopping.wait())
    try:  # a stopping worker gives the task back at once
        await asyncio.wait({stop, asyncio.ensure_future(env.clock.sleep(pause))},
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
    finally:
        stop.cancel()
    await _request(env, "task.release", {"id": id, "version": version})


__all__ = ["NondeterminismError", "run_task"]
