"""Why an execution a handle waits on has not settled, read from the store.

Two questions, both answered from the protocol's records, never from this process's memory
(the execution may run anywhere):

* ``halted(network, id, now)``: did the workers of the target group halt the execution's
  task, or pause it?  The SDK's workers pause an execution whose function they do not have
  (its status record says so, protocol/status.py: deploying the function resumes it) or,
  with ``Sustain(on_code_mismatch="fail")``, halt its task after ``HALT_AFTER_MISSES``
  deliveries (runner.py), and leave the promise pending: deploying the function and
  ``sustain tasks continue ID`` runs it then.  A waiting handle therefore
  probes the task (``Probe``: a first look after ``PROBE_FIRST`` seconds, then less and less
  often, up to every ``PROBE_MAX``), and a halted task ends the wait with a
  ``FunctionNotFoundError`` naming the group and the function.  Only a handle still waiting
  after ``PROBE_FIRST`` seconds makes requests (one ``task.get`` per look).

* ``explain(network, id)``: what does it wait on?  What ``handle.result(timeout)`` puts in
  its ``ExecutionTimeoutError``: the state of the task (not claimed by any worker of the
  group, running on a pid, suspended, halted) and every promise of the execution's lineage
  still pending (``resonate:origin`` = the id), each with its kind: a step, a sleep until
  when, a promise someone must settle, a call on another group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sustain.errors import DecodingError, FunctionNotFoundError
from sustain.protocol import status
from sustain.runtime.clock import Clock
from sustain.sdk import codec, ids
from sustain.sdk.network import Network, NetworkStopped

log = logging.getLogger(__name__)

Fail = Callable[[str, BaseException], None]

PROBE_FIRST = 2.0  # seconds: most handles settle before anything is worth a request
PROBE_MAX = 10.0
MAX_LISTED = 10  # pending promises named in one explanation


def group_of(target: str | None) -> str | None:
    """``poll://any@orders`` -> ``orders``; other addresses as they are."""
    if not target:
        return None
    _, _, rest = target.partition("://")
    _, at, group = rest.partition("@")
    return group.split("/")[0] if at else target


def _func(promise: dict[str, Any]) -> tuple[str, int | None]:
    try:
        inv = codec.decode_invocation(promise.get("param"), promise.get("id"))
    except DecodingError:
        return "?", None
    return inv.func, inv.version


async def _get(network: Network, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    answer = await network.request(kind, data)
    return answer.data if answer.status == 200 else None


async def halted(network: Network, id: str, now: int) -> FunctionNotFoundError | None:
    """The error to raise if the task of ``id`` was halted, or the execution is paused
    because its function is not registered (its status record says so), else None."""
    found = await _get(network, "task.get", {"id": id})
    if found is None:
        return None
    paused = found["task"].get("state") != "halted"
    if paused and not await _paused_unknown(network, id, now):
        return None
    got = await _get(network, "promise.get", {"id": id})
    promise: dict[str, Any] = got["promise"] if got is not None else {"id": id}
    func, version = _func(promise)
    group = group_of((promise.get("tags") or {}).get(ids.TARGET)) or "?"
    return FunctionNotFoundError(func, version, group, id, paused=paused)


async def _paused_unknown(network: Network, id: str, now: int) -> bool:
    """Whether the workers pause ``id`` now because none has its function (runner.py)."""
    found = await _get(network, status.GET, {"ids": [id]})
    record = status.decode(((found or {}).get("statuses") or {}).get(id))
    if record is None:
        return False
    why = status.pause_of(record, "pending", now)
    return why is not None and why.startswith(FunctionNotFoundError.__name__)


class Probe:
    """Looks at the task of a waited-on id now and then; fails the wait if it is halted.
    Its pauses are the SDK clock's (``Sustain(clock=...)``)."""

    def __init__(self, network: Network, clock: Clock, id: str, fail: Fail) -> None:
        self.network = network
        self.clock = clock
        self.id = id
        self.fail = fail  # ends every wait on id with the error
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def _watch(self) -> None:
        delay = PROBE_FIRST
        while True:
            await self.clock.background_sleep(delay)  # housekeeping (runtime/clock.py)
            try:
                error = await halted(self.network, self.id, self.clock.now())
            except NetworkStopped:
                return
            except Exception:  # a failed look is not the execution's failure: look again
                log.debug("probing the task of %s failed", self.id, exc_info=True)
                error = None
            if error is not None:
                self.fail(self.id, error)
                return
            delay = min(delay * 2, PROBE_MAX)


async def explain(
    network: Network, id: str, retrying: dict[str, str] | None, now: int
) -> list[str]:
    """What the execution ``id`` waits on, one phrase per thing (see the module docstring).
    ``retrying``: the last error of each step this process is retrying, by id; the status
    records (protocol/status.py) tell those of steps that run elsewhere, and a pause."""
    got = await _get(network, "promise.get", {"id": id})
    if got is None:
        return [f"no promise {id!r} exists"]
    promise = got["promise"]
    if promise.get("state") != "pending":
        return [f"nothing: it is {promise.get('state')} now"]
    func, _ = _func(promise)
    group = group_of((promise.get("tags") or {}).get(ids.TARGET))
    found = await _get(network, "task.get", {"id": id})
    reasons = [_task_phrase(found["task"] if found else None, func, group)]
    search = {"state": "pending", "tags": {ids.ORIGIN: id}, "limit": MAX_LISTED + 1}
    listed = await _get(network, "promise.search", search)
    children = [p for p in (listed or {}).get("promises", []) if p.get("id") != id]
    shown = children[:MAX_LISTED]
    records = await _records(network, [id] + [str(c.get("id")) for c in shown])
    own = records.get(id)
    why = None if own is None else status.pause_of(own, "pending", now)
    if why is not None:
        reasons.insert(0, f"it is paused: {why}")
    reasons.extend(_child_phrase(c, retrying or {}, records, now) for c in shown)
    if len(children) > MAX_LISTED:
        reasons.append("and more pending promises (sustain tree ID lists them all)")
    return reasons


def _task_phrase(task: dict[str, Any] | None, func: str, group: str | None) -> str:
    if task is None:
        return "a promise without a task: it settles when someone settles it"
    state = task.get("state")
    if state == "pending" and int(task.get("version") or 0) <= 1:
        return (
            f"its task ({func!r}) has not been claimed: no worker of group {group!r} "
            "is connected, or all are busy"
        )
    if state == "pending":
        return f"its task ({func!r}) waits for a worker of group {group!r} to take it again"
    if state == "acquired":
        return f"its task ({func!r}) runs on worker {task.get('pid')!r}"
    if state == "suspended":
        return f"its task ({func!r}) is suspended until what it awaits settles"
    if state == "halted":
        return f"its task was halted: no worker of group {group!r} has {func!r}"
    return f"its task ({func!r}) is {state}"


async def _records(network: Network, ids: list[str]) -> dict[str, status.Status]:
    found = await _get(network, status.GET, {"ids": ids})  # None: no such extension
    records = (found or {}).get("statuses") or {}
    decoded = {k: status.decode(v) for k, v in records.items()}
    return {k: v for k, v in decoded.items() if v is not None}


def _child_phrase(
    child: dict[str, Any], retrying: dict[str, str], records: dict[str, status.Status], now: int
) -> str:
    id = str(child.get("id"))
    tags = child.get("tags") or {}
    if tags.get(ids.TIMER) == "true":
        return f"sleep {id!r} until {_when(child.get('timeoutAt'))}"
    if tags.get(ids.EXTERNAL) == "true":
        return f"promise {id!r}, settled by someone else (sustain.promises.resolve)"
    func = codec.recorded_func(child.get("param")) or "?"
    if tags.get(ids.SCOPE) == "local":
        if id in retrying:
            return f"step {id!r} ({func}), retrying: {retrying[id]}"
        if id in records:  # retried by a worker elsewhere, which recorded it
            return f"step {id!r} ({func}), {status.summary(records[id], 'pending', now)}"
        return (
            f"step {id!r} ({func}), running or retrying: its failed attempts are logged "
            "at WARNING by the worker that runs it"
        )
    return f"call {id!r} ({func}) on {group_of(tags.get(ids.TARGET))!r}"


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return "?"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
