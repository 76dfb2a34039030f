"""The replay runtime: one entry point, ``run_task``, for every task this process holds.

Theory of operation (PROTOCOL.md §2, SDK-WIRE §2.2):

1. The task is acquired (``task.acquire`` by the worker, or ``task.create`` by ``run``) and
   comes with its promise and the *preload*: the settled and pending promises of its branch.
2. Early exits: a settled root is fulfilled with its value; a pending root *timer* is
   dropped (its task belongs to the server's timer); an unknown function backs off, releases,
   and after a few misses halts the task (never a hot acquire/release loop).
3. A *pass* replays the function from the top with a fresh ``Context``.  Each durable call is
   a fenced create (``task.fence`` + ``promise.create``), skipped when the preload already
   holds the promise.  A settled child returns its stored value at once (this is how replay
   skips finished steps); the stored function name is compared with the call now made and a
   difference is a ``NondeterminismError``.  A pending ``ctx.run`` child runs in process at
   once and is settled with a fenced ``promise.settle``; its value is read back through the
   codec so live and replayed runs see the same thing.  A pending remote child (rpc, sleep,
   promise) becomes a *todo*; awaiting it raises ``Suspend`` (a BaseException), ending the
   user's code.  A pending remote child of *another origin* (an explicit id such as
   ``factorial-5`` awaited by ``factorial-6``) cannot be a todo: callbacks and ``task.suspend``
   only join promises of one origin (PROTOCOL.md §2.4).  The pass waits for it instead, with
   the task still acquired (the worker keeps heartbeating its lease): a listener at this
   process's unicast address (``WorkerState.watch``, the worker's ``Subscriptions``) is woken by the
   ``unblock`` message, or answers at once when the promise is already settled.  If the
   process dies the lease lapses and another worker replays and waits the same way; if the
   worker stops gracefully the wait ends with ``Released`` and the task is released at once.
4. End of a pass, after every child started in it has finished (structured concurrency):
   todos → ``task.suspend`` with a callback per todo (300 = one already settled: replay again
   now under the same lease, with the new preload); none → ``task.fulfill`` with the value
   or the error.  A lost lease (404/409 on a fenced call) abandons the pass silently; any
   other platform failure releases the task (after a growing pause) so it is delivered
   again.  A ``NondeterminismError`` rejects the execution: its history cannot be replayed
   by this code, and retrying would only fail the same way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sustain.errors import (
    Cancel,
    DecodingError,
    NondeterminismError,
    SerializationError,
    ServerError,
    Suspend,
    SustainError,
)
from sustain.protocol.versions import pin_tags
from sustain.runtime import trace_context
from sustain.runtime.clock import Clock
from sustain.sdk import codec, ids, mistakes, telemetry
from sustain.sdk.context import Call, Context, Info
from sustain.sdk.futures import PENDING, DurableFuture, Outcome
from sustain.sdk.invoke import call_with_retry, returned
from sustain.sdk.network import Network
from sustain.sdk.registry import Function, Registry
from sustain.sdk.retry import Never
from sustain.sdk.status import StatusWriter
from sustain.sdk.typed_values import NO_PARAMETERS

log = logging.getLogger(__name__)

HALT_AFTER_MISSES = 3
# The longest a finished step's settle waits for the pass's next request to leave with it.
HOLD_S = 0.002
_OWN_FUNC = frozenset({"run", "rpc", "detached"})  # calls whose param names their function


@dataclass
class WorkerState:
    """What every replay pass of this process shares."""

    network: Network
    registry: Registry
    group: str
    pid: str
    ttl_ms: int
    # Every "now" of a pass (deadlines, ctx.now(), retries) and every backoff sleep.
    clock: Clock = field(default_factory=Clock)
    dependencies: dict[str, Any] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    # The last error of each call this process is retrying (its backoff is running), for a
    # timed-out handle's explanation (waiting.py); written on the failure path only.
    retrying: dict[str, str] = field(default_factory=dict)
    # The settled record of a promise, once it settles (a listener; set by the worker).
    watch: Callable[[str], Awaitable[dict[str, Any]]] | None = None
    # Called with (function name, promise id) as each attempt of a call starts its body:
    # sustain.testing counts how often each step ran across simulated crashes.
    observe: Callable[[str, str], None] | None = None
    # Set when the worker stops: waits on promises of another origin give their task back.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # What a deploy can fix (a nondeterminism, an unknown function) pauses the execution
    # (True, ``Sustain(on_code_mismatch="pause")``) or fails it as before (False).
    pause_mismatch: bool = True
    # Status records of failed attempts and paused executions (sdk/status.py).
    status: StatusWriter = field(init=False)

    def __post_init__(self) -> None:
        self.status = StatusWriter(self.network)

    def target(self, wanted: str | None) -> str:
        return ids.resolve_target(wanted) if wanted else self.network.anycast(self.group)


class Released(Exception):
    """The worker stops while a task waits on a promise of another origin: the task is
    released so that another worker of the group takes it over now, not after its lease."""


class ReplayPass:
    """One replay of one task's function from the top."""

    def __init__(self, env: WorkerState, task_id: str, version: int, cache: dict[str, Any]) -> None:
        self.env = env
        self.task_id = task_id
        self.version = version
        self.cache = cache
        self.todos: dict[str, None] = {}
        self.spawned: list[asyncio.Task[Outcome]] = []
        self.failure: BaseException | None = None
        self.nondeterminism: NondeterminismError | None = None
        self._last_settle: asyncio.Future[Outcome] | None = None
        # Settles held back to leave with this pass's next request (``_chain_settle``).
        self._held: asyncio.Future[None] | None = None
        self._held_timer: asyncio.TimerHandle | None = None

    # -- what Context asks ----------------------------------------------------------------
    def resolve(self, fn: Callable[..., Any] | str | Function, version: int | None) -> Function:
        return self.env.registry.resolve(fn, version)

    def name_of(self, fn: Callable[..., Any] | str, version: int | None) -> tuple[str, int]:
        if isinstance(fn, str):
            if version:
                return fn, version
            known = self.env.registry.find_name(fn)
            return fn, known.version if known is not None else 1
        found = self.env.registry.find(fn)
        if found is None:
            return getattr(fn, "__name__", repr(fn)), version or 1
        return found.name, version or found.version

    def target(self, wanted: str | None) -> str:
        return self.env.target(wanted)

    def dependency(self, name: str) -> Any:
        return self.env.dependencies[name]

    def builtin(self, name: str, fn: Callable[..., Any]) -> Function:
        return Function(name, fn, 1, Never(), "coroutine", Any)

    def start(self, call: Call) -> DurableFuture:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a plain def runs in a thread, where no loop runs
            caller = call.parent.info.func_name
            raise mistakes.plain_def_call(caller, call.kind, call.func) from None
        op = telemetry.call(self.cache, call.kind, call.id, call.func, self._op(call))
        task = loop.create_task(op)
        self.spawned.append(task)
        return DurableFuture(call.id, task)

    # -- one durable call -------------------------------------------------------------------
    async def _op(self, call: Call) -> Outcome:
        return await self.guard(self._op_inner(call))

    async def guard(self, op: Awaitable[Outcome]) -> Outcome:
        """The outcome of one durable call's work, with the platform's failures mapped: a
        nondeterminism fails the call (and the execution), a lost lease or a bug ends the
        pass (``Cancel``, which user code cannot swallow)."""
        try:
            return await op
        except NondeterminismError as exc:
            self.nondeterminism = exc
            return Outcome(error=exc)
        except DecodingError as exc:  # a stored value we cannot read fails this call only
            return Outcome(error=exc)
        except (Cancel, Released) as exc:  # the lease is gone, or the worker stops
            self.failure = self.failure or exc
            return Outcome(error=Cancel())
        except Exception as exc:  # platform trouble or a bug: the pass ends, the task is
            self.failure = self.failure or exc  # released; Cancel so user code cannot swallow it
            return Outcome(error=Cancel())

    async def _op_inner(self, call: Call) -> Outcome:
        try:
            param = self._param(call)
        except SerializationError as exc:
            error: SustainError = exc
            future = mistakes.forgotten((call.args, call.kwargs))
            if future is not None:  # ctx.run(f, ctx.run(g)): g's future passed as a value
                where = f"an argument of its call of {call.func!r}"
                error = mistakes.forgotten_error(call.parent.info.func_name, future, where)
            return Outcome(error=error)
        if call.kind != "run":
            trace_context.inject(param)  # the callee's task span joins this call's trace
            await self._durable()  # nothing leaves this process before earlier steps are saved
        record = await self._create(call, param)
        self._check(call, record, param)
        if call.slot is not None and ids.origin_of(call.id) != ids.origin_of(call.parent.id):
            await self._link(call)
        if record["state"] != "pending":
            return self._settled(call, record)
        if call.kind == "detached":
            return Outcome(call.id)
        if call.kind != "run":
            if ids.origin_of(call.id) != ids.origin_of(self.task_id):
                # callbacks only join promises of one origin (PROTOCOL.md §2.4): wait here
                return self._settled(call, await self._wait_foreign(call.id))
            self.todos[call.id] = None
            return Outcome(PENDING)
        return await self._run_local(call)

    async def _wait_foreign(self, id: str) -> dict[str, Any]:
        """The settled record of ``id`` (another origin), waited for with the task held."""
        if self.env.watch is None:
            raise SustainError(f"awaiting {id!r} (another origin) needs a worker's listener")
        watch = asyncio.ensure_future(self.env.watch(id))
        stop = asyncio.ensure_future(self.env.stopping.wait())
        try:
            await asyncio.wait({watch, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not watch.done():
            watch.cancel()  # the listener itself stays registered; its future is shared
            raise Released(id)
        record = watch.result()
        self.cache[id] = record
        return record

    def _param(self, call: Call) -> dict[str, Any]:
        if call.kind == "run":
            return codec.step_param(call.func, call.version, call.id, call.args, call.kwargs)
        if call.kind in ("rpc", "detached"):
            known = self.env.registry.lookup(call.func, call.version)
            params = known.params if known is not None else NO_PARAMETERS
            return codec.encode_invocation(
                call.func, call.args, call.kwargs, call.version, call.id, params
            )
        return {}

    def _tags(self, call: Call) -> dict[str, str]:
        parent = call.parent
        origin = ids.origin_of(parent.id)
        if call.kind == "run":
            tags = ids.local_tags(call.id, origin, parent.branch, parent.id)
        elif call.kind == "detached":
            tags = ids.global_tags(call.id, origin, origin, call.target, self._pin(call))
        else:
            extra = {ids.TIMER: "true"} if call.kind == "sleep" else {}
            if call.kind == "promise":
                extra = {ids.EXTERNAL: "true"}
            elif call.kind == "rpc":
                extra = self._pin(call)
            tags = ids.global_tags(call.id, origin, parent.id, call.target, extra)
        # An explicit id (options(id=...)) may not extend these tags; the protocol requires
        # that it does, so such a tag falls back to the id itself (a lineage of its own).
        tags[ids.ORIGIN] = ids.origin_of(call.id)
        for key in (ids.BRANCH, ids.PARENT):
            if not ids.extends(call.id, tags[key]):
                tags[key] = call.id
        return {**call.tags, **tags}

    def _pin(self, call: Call) -> dict[str, str]:
        """The version pin of a remote call when this process knows the version (named in
        the options, or the function registered here): protocol/versions.py."""
        known = call.version_named or self.env.registry.find_name(call.func) is not None
        return pin_tags(call.func, call.version) if known else {}

    def _check(self, call: Call, record: Mapping[str, Any], sent: Mapping[str, Any]) -> None:
        param = record.get("param")
        if (
            call.kind in _OWN_FUNC
            and isinstance(param, dict)
            and param.get("data") == sent.get("data")
        ):
            return  # the param this call sent names this very function: nothing to decode
        recorded = codec.recorded_func(param)
        tags = record.get("tags") or {}
        if recorded is None:
            if tags.get(ids.TIMER) == "true":
                recorded = "sleep"
            elif tags.get(ids.EXTERNAL) == "true":
                recorded = "promise"
        if recorded is not None and recorded != call.func:
            raise NondeterminismError(call.id, recorded, call.func)

    def _settled(self, call: Call, record: Mapping[str, Any]) -> Outcome:
        ok, value = codec.outcome(record)
        if not ok:
            return Outcome(error=value)
        if call.kind == "detached":
            return Outcome(call.id)
        function = call.function
        if function is None and call.kind == "rpc":  # rebuilt here if registered here too
            function = self.env.registry.lookup(call.func, call.version)
        return Outcome(codec.convert(value, function.returns) if function is not None else value)

    async def _run_local(self, call: Call) -> Outcome:
        assert call.function is not None
        parent = call.parent
        info = Info(
            call.id, parent.id, ids.origin_of(parent.id), parent.branch, call.timeout_at,
            call.func, call.version, 1,
        )  # fmt: skip
        ctx = Context(self, info, parent.branch)
        await self._durable()  # a step's body never starts before the earlier steps are saved
        try:
            value = await call_with_retry(
                call.function, ctx, call.args, call.kwargs, self.env.clock, call.retry
            )
        except Suspend:
            return Outcome(PENDING)  # it waits on a remote todo, already recorded
        except Exception as exc:
            state, wire = "rejected", codec.encode_error(exc, call.id)
        else:
            try:
                state, wire = "resolved", codec.encode(value, call.id)
            except SerializationError as exc:
                error = returned(call.func, value, exc)
                state, wire = "rejected", codec.encode_error(error, call.id)
        # The value goes back to the workflow now, while its fenced settle is in flight, so the
        # next step's create shares a commit (one fsync) with this settle.  The next step's
        # body or remote call waits until every settle sent so far is acknowledged
        # (``_durable``), and the pass ends only once all are (``join``): a step that started
        # after this one never runs while this one could still run again.
        self._chain_settle(call.id, state, wire)
        return self._settled(call, {"id": call.id, "state": state, "value": wire})

    async def _durable(self) -> None:
        """Wait until every settle made so far is acknowledged."""
        self._release()
        if self._last_settle is not None:
            await self._last_settle

    def _chain_settle(self, id: str, state: str, wire: dict[str, Any]) -> None:
        """Send the settle and make it the chain's last link: done once it and every earlier
        settle are acknowledged.  Settles in flight together are those of steps that ran
        concurrently (any later step waited for the earlier settles), so the order in which
        they become durable does not matter to a replay: a fan-out's settles leave together.

        A settle is held back until this pass's next request (``_fence`` releases it), so
        that step k's settle and step k+1's create leave in one batch (``sustain.batch``,
        one HTTP request instead of two) or one store transaction; until then nothing can
        observe the step (nothing leaves the pass but through ``_fence``, and ``_durable``
        and ``join`` release it too).  ``HOLD_S`` bounds the wait, so a workflow that does
        something slow and non-durable between steps still saves a finished step at once."""
        previous = self._last_settle
        held = self._held
        if held is None:
            loop = asyncio.get_running_loop()
            held = self._held = loop.create_future()
            self._held_timer = loop.call_later(HOLD_S, self._release)

        async def settle() -> Outcome:
            await held
            try:
                await self._settle(id, state, wire)
            except Exception as exc:  # Cancel is a BaseException and is caught below
                self.failure = self.failure or exc
            except Cancel as exc:
                self.failure = self.failure or exc
            if previous is not None:
                await previous
            return Outcome()

        self._last_settle = task = asyncio.get_running_loop().create_task(settle())
        self.spawned.append(task)

    def _release(self) -> None:
        """Let the held settles go: their tasks send them on the next loop iteration, ahead
        of the request being made now, which therefore joins their batch."""
        held = self._held
        if held is None:
            return
        self._held = None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if not held.done():
            held.set_result(None)

    # -- fenced requests ------------------------------------------------------------------
    async def _fence(self, action: dict[str, Any], durable: bool = True) -> dict[str, Any]:
        # "sustain:preload": False asks a Sustain server not to send the branch (O(n^2)
        # records over a workflow of n steps); a Resonate server ignores the unknown field
        # (PROTOCOL.md §1.4) and sends it, which is harmless since it is ignored below.
        data = {"id": self.task_id, "version": self.version, "action": action,
                "sustain:preload": False}  # fmt: skip
        self._release()  # held settles leave with this request (``_chain_settle``)
        answer = await self.env.network.request("task.fence", data, durable)
        if answer.status in (404, 409):
            raise Cancel()
        if answer.status != 200:
            raise ServerError(answer.status, str(answer.data), "task.fence")
        # A fence's preload (the whole branch again, when a server sends it) is ignored: the
        # acquire's preload and each fence's own answer tell this pass everything it replays.
        inner = answer.data["action"]
        if inner["head"]["status"] != 200:
            raise ServerError(inner["head"]["status"], str(inner["data"]), action["kind"])
        promise: dict[str, Any] = dict(inner["data"]["promise"])
        self.cache[promise["id"]] = promise
        return promise

    async def _create(self, call: Call, param: dict[str, Any]) -> dict[str, Any]:
        cached = self.cache.get(call.id)
        if cached is not None and cached["state"] != "pending":
            return dict(cached)  # settled records never change; a pending one may have since
        data = {"id": call.id, "timeoutAt": call.timeout_at, "param": param,
                "tags": self._tags(call)}  # fmt: skip
        # A local step's checkpoints are seen by this pass alone, so an embedded store may
        # answer them before its disk sync; everything that leaves the process (a remote
        # create, a fulfill, a suspend) is a durable request whose sync covers them
        # (docs/decisions.md, "Volatile acknowledgement").
        action = {"kind": "promise.create", "head": {}, "data": data}
        return await self._fence(action, durable=call.kind != "run")

    async def marker(self, data: dict[str, Any], step: int) -> dict[str, Any] | None:
        """The fenced create of a patch marker at step ``step`` (patches.py): the marker, or
        the record already there.  None: nothing is there and this pass writes nothing (a
        history replay at its frontier, history_replay.py)."""
        return await self._fence({"kind": "promise.create", "head": {}, "data": data}, False)

    async def _link(self, call: Call) -> None:
        """Record, in the caller's execution, that it awaits ``call.id`` of another origin.

        Such a promise carries its own lineage in its tags (ORIGIN is its own id), and may
        have been created by someone else before (a content-addressed id, as in the
        factorial example), so nothing in it says who waits for it.  A resolved local record
        at the call's minted id (``call.slot``), tagged ``sustain:link = <id>``, does: the
        CLI's ``tree`` and the UI follow it to draw the whole chain.  Local scope puts it in
        the caller's preload, so a replay finds it and writes nothing again.
        """
        assert call.slot is not None
        if call.slot in self.cache:
            return
        parent = call.parent
        tags = ids.local_tags(call.slot, ids.origin_of(parent.id), parent.branch, parent.id)
        tags[ids.LINK] = call.id
        data = {"id": call.slot, "timeoutAt": parent.info.timeout_at, "param": {}, "tags": tags}
        created = await self._fence({"kind": "promise.create", "head": {}, "data": data}, False)
        if created["state"] == "pending":
            await self._settle(call.slot, "resolved", {})

    async def _settle(self, id: str, state: str, value: dict[str, Any]) -> dict[str, Any]:
        """The settle of a local step (the only promise a pass settles by fence)."""
        data = {"id": id, "state": state, "value": value}
        return await self._fence({"kind": "promise.settle", "head": {}, "data": data}, False)

    async def join(self) -> None:
        """Wait for every child started in this pass, including ones started meanwhile (they
        are appended: one pass over the list sees them).  Like ``asyncio.wait``, for a fraction
        of its cost: a child's end never raises here, and cancelling the join leaves the
        children running."""
        self._release()
        spawned = self.spawned
        i = 0
        while i < len(spawned):
            task = spawned[i]
            i += 1
            if not task.done():
                ended = asyncio.get_running_loop().create_future()
                task.add_done_callback(partial(_ended, ended))
                await ended


def _ended(ended: asyncio.Future[None], task: asyncio.Future[Any]) -> None:
    if not ended.done():  # the join was cancelled meanwhile
        ended.set_result(None)
