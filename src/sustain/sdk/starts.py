"""How a top-level call (``Sustain.run``/``rpc``) reaches the store, and how its wait ends.

``start_run`` creates the promise and its task in one ``task.create`` that may acquire the
task for this process (then the worker runs it here and reports its end); ``start_rpc``
creates the promise for the target's workers. Either way an id that already holds another
call is reported (``same_call``), and a wait on an execution run elsewhere is probed, so
that a task the group's workers halted ends it (``settled``, waiting.py). Every creating
request goes through ``send``, which ``stop()`` waits for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sustain.errors import ArgumentsMismatchError, ServerError
from sustain.sdk import codec, waiting
from sustain.sdk.client_state import ClientState
from sustain.sdk.network import Answer

# The facade's logger, as before these functions left client.py: a filter on it still works.
log = logging.getLogger("sustain.sdk.client")


async def send(
    core: ClientState, kind: str, data: dict[str, Any], claim: str | None = None
) -> Answer:
    """A call's creating request, which ``stop()`` waits for (registered before the first
    await, so a ``stop()`` submitted after the call always sees it).

    ``claim``: a ``task.create`` that may acquire that task for this pid.  Once started, it
    counts as an acquire in flight, so a takeover running meanwhile (recovery.py) does not
    release what it acquires; not before, since the start's own takeover must still release
    the task a dead process left acquired."""
    sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    core.sending.add(sent)
    try:
        network = core.network if core.ready else await core.ensure()
        if claim is None:
            return await network.request(kind, data)
        with core.worker.acquiring(claim):
            asked = core.env.clock.now()
            answer = await network.request(kind, data)
            if answer.status == 200 and answer.data["task"]["state"] == "acquired":
                version = int(answer.data["task"]["version"])
                core.worker.took(claim, version, asked)
            return answer
    finally:
        core.sending.discard(sent)
        sent.set_result(None)


async def start_run(core: ClientState, promise: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The settled record of ``Sustain.run``'s call, run here if this process wins the task."""
    env = core.env
    action = {"kind": "promise.create", "head": {}, "data": promise}
    data = {"pid": env.pid, "ttl": env.ttl_ms, "action": action}
    answer = await send(core, "task.create", data, claim=promise["id"])
    if answer.status == 200:
        task, record = answer.data["task"], answer.data["promise"]
        same_call(promise, record, strict)
        if task["state"] == "acquired":
            core.worker.hold(task, record, answer.data.get("preload") or [])
            # this process runs it: the worker reports its end (handles.py)
            return await core.subs.expect(promise["id"])
        if record["state"] != "pending":
            return dict(record)
    elif answer.status == 409:
        # The id exists (a 409 carries no record): one read to compare the calls.
        found = await send(core, "promise.get", {"id": promise["id"]})
        if found.status == 200:
            same_call(promise, found.data["promise"], strict)
    else:
        raise ServerError(answer.status, str(answer.data), "task.create")
    return await settled(core, promise["id"])


async def start_rpc(core: ClientState, promise: dict[str, Any], strict: bool) -> dict[str, Any]:
    """The settled record of ``Sustain.rpc``'s call, run by a worker of its target."""
    answer = await send(core, "promise.create", promise)
    if answer.status != 200:
        raise ServerError(answer.status, str(answer.data), "promise.create")
    same_call(promise, answer.data["promise"], strict)
    return await settled(core, promise["id"])


def same_call(sent: dict[str, Any], record: dict[str, Any], strict: bool) -> None:
    """Warn (or raise, ``strict``) when an existing promise records another call."""
    stored = record.get("param") or {}
    if stored.get("data") == sent["param"].get("data"):
        return  # the usual case: this very call, or a retry of it
    mismatch = codec.call_mismatch(stored, sent["param"])
    if mismatch is None:
        return
    recorded, given = mismatch
    if strict:
        raise ArgumentsMismatchError(sent["id"], recorded, given)
    log.warning(
        "promise %s already holds %s, not this call's %s: the same id returns the first "
        "execution's result (Sustain(strict=True) raises instead)",
        sent["id"], recorded, given, extra={"promise_id": sent["id"]},
    )  # fmt: skip


async def settled(core: ClientState, id: str) -> dict[str, Any]:
    """The settled record of ``id``, run elsewhere: the probe ends the wait if the group's
    workers halt its task (waiting.py)."""
    probe = waiting.Probe(core.network, core.env.clock, id, core.subs.fail)
    probe.start()
    try:
        return await core.subs.watch(id)
    finally:
        probe.stop()
