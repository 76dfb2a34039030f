"""Serverless execution: run one pushed task until it completes or suspends, then answer.

A serverless function (Cloud Run, Lambda, any HTTP host that may freeze or end the process
once it has answered) is reached by the server's HTTP push (PROTOCOL.md §4.3): the server
POSTs ``{"kind": "execute", "head": {...}, "data": {"task": {"id", "version"}}}`` to the
``http(s)://`` address in the promise's ``resonate:target`` tag.  ``execute`` is the one core
the ASGI app and the Lambda handler (``sustain.integrations``) share:

1. Validate the message; only ``execute`` is work (an ``unblock`` is acknowledged and
   ignored: a function is never a listener).
2. ``task.acquire`` the task with this process's pid and ttl.  A 404/409 means the message
   is stale (an earlier delivery won it, or the task moved on): nothing to do, answered 200.
3. Run it with the SDK's replay runtime (``runner.run_task``, the same code a poll worker
   uses), heartbeating its lease every ttl/3 while it runs, until it fulfills or suspends.
4. Report what became of the task, read from the task requests the run made (no extra round
   trip, no race with a timer firing right after a suspend): ``fulfilled`` and ``suspended``
   answer 200; ``released`` (the function raised a platform error, or it is not registered
   here) and ``halted`` answer 500; a lease lost to another process answers 409.  The server
   only logs a non-2xx answer: redelivery always comes from the task's own timers (a release
   re-sends at once, a lapsed lease after ttl, a pending task every ``retry_timeout``).

Children that name no target (``ctx.rpc``, ``ctx.sleep``, ``ctx.detached``) go to the
address this task was pushed to (its promise's ``resonate:target``), so a game that sleeps or
starts its successor comes back to the same function, as with the official adapters.  The
function's network is started without a message stream: the server reaches it by push only.
A timer task pushed here (a sleep's) is acquired and dropped, as a poll worker does; the
timer resolves on the server and the sleeping task is pushed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from sustain.sdk import ids
from sustain.sdk.network import Announce, Answer, MessageHandler, Network, NetworkStopped
from sustain.sdk.replay import WorkerState
from sustain.sdk.runner import run_task

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain

log = logging.getLogger(__name__)

# The task requests whose answer says what became of the pushed task.
_ENDS = frozenset({"task.fulfill", "task.suspend", "task.release", "task.halt", "task.fence"})


@dataclass(frozen=True)
class Outcome:
    """What one push did: the HTTP ``status`` to answer and a JSON-able ``body``."""

    status: int
    outcome: str  # fulfilled | suspended | timer | stale | ignored | released | halted | ...
    task: str | None = None
    detail: str = ""
    preload: int = 0  # promises the replay started from (the bounded replay scope)
    seconds: float = 0.0

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"outcome": self.outcome}
        if self.task is not None:
            body.update(task=self.task, preload=self.preload, seconds=round(self.seconds, 3))
        if self.detail:
            body["detail"] = self.detail
        return body


class _Observed:
    """The network as one pushed task sees it: children default to the address the task was
    pushed to, and the task requests' answers are recorded to tell the outcome."""

    def __init__(self, network: Network, task_id: str, address: str) -> None:
        self._network = network
        self._task_id = task_id
        self._address = address
        self.last: tuple[str, int] | None = None  # (kind, status) of the last task request

    async def request(self, kind: str, data: Mapping[str, Any], *args: Any, **kw: Any) -> Answer:
        answer = await self._network.request(kind, data, *args, **kw)
        # A fence tells the outcome only when it finds the lease lost.
        lost = answer.status in (404, 409)
        if kind in _ENDS and data.get("id") == self._task_id and (kind != "task.fence" or lost):
            self.last = (kind, answer.status)
        return answer

    def anycast(self, group: str) -> str:
        return self._address

    async def start(self) -> None:
        await self._network.start()

    async def stop(self) -> None:
        await self._network.stop()

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        self._network.listen(group, pid, on_message, functions)

    async def unlisten(self, group: str, pid: str) -> None:
        await self._network.unlisten(group, pid)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._network.on_reconnect(callback)

    def unicast(self, group: str, pid: str) -> str:
        return self._network.unicast(group, pid)


def parse(message: bytes | str | Mapping[str, Any]) -> tuple[str, int] | Outcome:
    """The ``(task id, version)`` an execute message names, or the Outcome to answer."""
    if not isinstance(message, Mapping):
        try:
            message = msgspec.json.decode(message)
        except msgspec.DecodeError:
            return Outcome(400, "invalid", detail="the body is not JSON")
    if not isinstance(message, Mapping) or not isinstance(message.get("kind"), str):
        return Outcome(400, "invalid", detail="not a message: expected {kind, head, data}")
    if message["kind"] == "unblock":
        return Outcome(200, "ignored", detail="a function does not listen for unblocks")
    if message["kind"] != "execute":
        return Outcome(400, "invalid", detail=f"unknown message kind {message['kind']!r}")
    data = message.get("data")
    task = data.get("task") if isinstance(data, Mapping) else None
    id = task.get("id") if isinstance(task, Mapping) else None
    version = task.get("version") if isinstance(task, Mapping) else None
    if not isinstance(id, str) or not id or type(version) is not int or version < 0:
        return Outcome(400, "invalid", detail="an execute message needs data.task {id, version}")
    return id, version


async def run(
    env: WorkerState, network: Network, message: bytes | str | Mapping[str, Any]
) -> Outcome:
    """Acquire and run the pushed task on ``network`` (already started); see the module doc."""
    parsed = parse(message)
    if isinstance(parsed, Outcome):
        return parsed
    id, version = parsed
    started = time.monotonic()
    data = {"id": id, "version": version, "pid": env.pid, "ttl": env.ttl_ms}
    try:
        answer = await network.request("task.acquire", data)
    except NetworkStopped:
        return Outcome(503, "stopped", id, "the function is shutting down")
    if answer.status in (404, 409):
        return Outcome(200, "stale", id, str(answer.data))
    if answer.status != 200:
        return Outcome(502, "failed", id, f"task.acquire answered {answer.status} {answer.data}")
    task, promise = answer.data["task"], answer.data["promise"]
    preload = answer.data.get("preload") or []
    tags = promise.get("tags") or {}
    observed = _Observed(network, id, tags.get(ids.TARGET) or network.anycast(env.group))
    # The same registry, dependencies and counters; no listener for promises of another
    # origin (a function has no message stream: such a wait fails the run at once).
    # A function invocation cannot hold a task through a pause (it is billed for the wait,
    # and its platform's timeout may be shorter): code mismatches fail here, as before.
    here = dataclasses.replace(env, network=observed, watch=None, pause_mismatch=False)
    beat = asyncio.ensure_future(_heartbeat(network, env, id, int(task["version"])))
    try:
        await run_task(here, task, promise, preload)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    timer = promise["state"] == "pending" and tags.get(ids.TIMER) == "true"
    outcome = _outcome(observed.last, timer)
    elapsed = time.monotonic() - started
    log.info("task %s v%s: %s in %.3fs", id, version, outcome[1], elapsed)
    return Outcome(*outcome, task=id, preload=len(preload), seconds=elapsed)


def _outcome(last: tuple[str, int] | None, timer: bool) -> tuple[int, str]:
    if last is None:
        # run_task made no task request: a pending timer is dropped on purpose (the server
        # resolves it); otherwise the run was cut short (the network stopped).
        return (200, "timer") if timer else (503, "stopped")
    kind, status = last
    if status in (404, 409):
        return 409, "lost"  # the lease went to another process; it carries on there
    if kind == "task.fulfill":
        return 200, "fulfilled"
    if kind == "task.suspend":
        return 200, "suspended"
    if kind == "task.halt":
        return 500, "halted"
    return 500, "released"  # run_task gave the task back after a failure: it is re-sent


async def _heartbeat(network: Network, env: WorkerState, id: str, version: int) -> None:
    pause = max(env.ttl_ms / 3000, 0.05)
    beat = {"pid": env.pid, "tasks": [{"id": id, "version": version}]}
    while True:
        await env.clock.sleep(pause)
        try:
            await network.request("task.heartbeat", beat)
        except NetworkStopped:
            return
        except Exception:  # retried at the next tick; the lease is ttl
            log.warning("heartbeat of %s failed", id, exc_info=True)


async def _execute(sustain: Sustain, message: bytes | str | Mapping[str, Any]) -> Outcome:
    env = sustain._core.env
    network = sustain.network
    await network.start()  # idempotent; no listen: a function is reached by push only
    return await run(env, network, message)


async def execute_async(sustain: Sustain, message: bytes | str | Mapping[str, Any]) -> Outcome:
    """``execute`` for async callers (an ASGI app): the task runs on the Sustain's own loop,
    like every workflow of that Sustain, and this coroutine waits for it."""
    future = sustain._core.loop().submit(_execute(sustain, message))
    # Shielded: if the caller is cancelled (a server shutting down), the run still ends
    # cleanly (fulfilled, suspended or released) instead of stopping mid-step.
    return await asyncio.shield(asyncio.wrap_future(future))


def execute(sustain: Sustain, message: bytes | str | Mapping[str, Any]) -> Outcome:
    """Run one pushed message to completion or suspension (blocking); see the module doc."""
    return sustain._core.loop().submit(_execute(sustain, message)).result()


async def close_async(sustain: Sustain) -> None:
    """Close the function's connections and its Sustain's loop (an ASGI lifespan shutdown)."""
    thread = sustain._core.thread
    if thread is None or not thread.loop.is_running():
        return
    await asyncio.wrap_future(thread.submit(sustain.network.stop()))
    await sustain.astop()


def close(sustain: Sustain) -> None:
    """``close_async`` for sync code (a short-lived process that ends after its handler)."""
    thread = sustain._core.thread
    if thread is not None and thread.loop.is_running():
        thread.submit(sustain.network.stop()).result()
        sustain.stop()
