"""``Sustain``: the facade users hold (``from sustain import Sustain``).

Modes: ``Sustain()`` is embedded (engine, SQLite store at ``./sustain.db`` and the server's
background loops in this process; ``Sustain(store=":memory:")`` for throwaway runs);
``Sustain(url="http://host:8001", group=, pid=, ttl=, token=)`` is remote (``POST /`` and
the SSE poll stream); with neither, ``SUSTAIN_URL`` (or ``RESONATE_URL``) in the environment
picks remote mode.

Sync and async: the facade runs its own event loop in a background thread, where workflows,
the worker and the network live.  ``run``/``rpc``/``get`` return a ``Handle`` at once from
any code; ``handle.result()`` blocks in sync code, and async code (or a notebook, whose
cells run on an event loop) writes ``await handle``: ``result()`` on a running loop raises
``AsyncUsageError`` saying so.  Likewise ``stop()`` blocks and ``await sustain.astop()`` (or
``async with Sustain(...)``) is its async form.  ``promises.*``, ``schedules.*``,
``schedule``, ``start`` and ``flush`` block in sync code and are awaitable in async code.
The network starts on first use (or ``start()``): register functions first, so that work a
previous run left unfinished finds them.

A handle waiting on an execution that runs elsewhere probes its task now and then
(waiting.py): a task the group's workers halted, because none has the function, ends the
wait with a ``FunctionNotFoundError`` naming the group and the function.

The facade only delegates: the registry (registry.py), the worker (worker.py), the replay
runtime (replay.py, runner.py), a call's requests and wait (starts.py), handles (handles.py),
raw clients (admin.py); the overloads that type its calls are shaped in signatures.py.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import timedelta
from typing import Any, Literal, overload

from sustain.errors import (
    AsyncUsageError,
    FunctionNotFoundError,
    ServerError,
)
from sustain.protocol.cancel import CancelFailed, CancelReport, drive_async, walk
from sustain.protocol.versions import pin_tags
from sustain.runtime import trace_context
from sustain.runtime.clock import Clock
from sustain.sdk import codec, forking, ids, status, waiting
from sustain.sdk.admin import Promises, Schedules
from sustain.sdk.client_state import ClientState, Options, network_for
from sustain.sdk.context import seconds as _seconds
from sustain.sdk.handles import Handle
from sustain.sdk.local import LocalNetwork
from sustain.sdk.loop import caller_is_async, deliver
from sustain.sdk.network import Network
from sustain.sdk.queues import Queues, queue_tags
from sustain.sdk.registry import Function
from sustain.sdk.remote import RemoteNetwork
from sustain.sdk.retry import RetryPolicy
from sustain.sdk.signatures import AsyncFunction, F, P, R, S, Step, Workflow, Y
from sustain.sdk.starts import settled, start_rpc, start_run
from sustain.sdk.typed_values import NO_PARAMETERS, Parameters

# The task lease: how long the group waits before another member takes over the tasks of a
# worker that died and never came back (docs/decisions.md, "Lease and heartbeat").
DEFAULT_TTL = 10.0


class Sustain:
    """Durable functions: register them, call them by id, get their results."""

    def __init__(self, store: str | None = None, *, url: str | None = None,
                 group: str = "default", pid: str | None = None,
                 ttl: float | timedelta = DEFAULT_TTL, token: str | None = None,
                 max_tasks: int = 64, network: Network | None = None, strict: bool = False,
                 clock: Clock | None = None,
                 on_code_mismatch: Literal["pause", "fail"] = "pause") -> None:  # fmt: skip
        """``strict``: calling an id that already holds another call (other function or
        arguments) raises ``ArgumentsMismatchError`` from the handle, instead of a logged
        warning (the existing execution's result is returned either way otherwise).

        ``clock`` (a ``Clock`` subclass, runtime/clock.py) is where every deadline,
        ``ctx.now()``, retry delay and heartbeat gets its time; in embedded mode the store's
        timers run on it too.  By default: a ``LocalNetwork``'s clock, else the wall clock.
        ``on_code_mismatch``: ``"pause"`` or ``"fail"`` (docs/errors.md, "Paused executions")."""
        if clock is None and isinstance(network, LocalNetwork):
            clock = network.clock
        clock = clock if clock is not None else Clock()
        net = network or network_for(store, url, token, clock)
        self._strict = strict
        ttl_ms = int(_seconds(ttl) * 1000)
        self._core = ClientState(
            net, group, pid or uuid.uuid4().hex, ttl_ms, max_tasks, clock,
            stable_pid=pid is not None,
        )  # fmt: skip
        self._core.env.pause_mismatch = status.pauses(on_code_mismatch)
        self._opts = Options()
        self.promises = Promises(self._core.ensure, self._bridge, clock)
        self.schedules = Schedules(self._core.ensure, self._bridge)
        self.queues = Queues(self._core.ensure, self._bridge)
        self.queue = self.queues.create  # sustain.queue("payments", concurrency=5)

    # -- plumbing ---------------------------------------------------------------------------
    def _bridge(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return deliver(self._core.loop().submit(coro))

    @property
    def group(self) -> str:
        return self._core.env.group

    @property
    def pid(self) -> str:
        return self._core.env.pid

    @property
    def stable_pid(self) -> bool:
        """True when the pid was given (``pid=`` or ``set_identity``), not drawn at random."""
        return self._core.stable_pid

    @property
    def network(self) -> Network:
        return self._core.network

    def set_identity(self, group: str | None = None, pid: str | None = None) -> None:
        """Change the worker group and/or process id (``sustain worker --group``); only
        before the network starts."""
        core = self._core
        if core.started:
            raise RuntimeError("set_identity() must be called before the Sustain starts")
        core.env.group = group or core.env.group
        core.env.pid = pid or core.env.pid
        core.stable_pid = core.stable_pid or pid is not None
        core.subs.address = core.network.unicast(core.env.group, core.env.pid)

    def connect(self, url: str, token: str | None = None) -> None:
        """Use the server at ``url`` (remote mode) whatever this ``Sustain`` was built with;
        only before the network starts (``sustain worker -S URL``).  Registered functions,
        dependencies, group and pid are kept."""
        old = self._core
        if old.started:
            raise RuntimeError("connect() must be called before the Sustain starts")
        core = ClientState(
            RemoteNetwork(url, token=token),
            old.env.group,
            old.env.pid,
            old.env.ttl_ms,
            old.worker.max_tasks,
            old.env.clock,
            stable_pid=old.stable_pid,
        )
        core.registry = old.registry
        core.env.registry = old.registry
        core.env.dependencies = old.env.dependencies
        core.env.pause_mismatch = old.env.pause_mismatch
        self._core = core
        self.promises = Promises(core.ensure, self._bridge, old.env.clock)
        self.schedules = Schedules(core.ensure, self._bridge)

    def functions(self) -> dict[str, list[int]]:
        """The registered function names and their versions."""
        return self._core.registry.versions()

    def start(self) -> Any:
        """Start the network and the worker (otherwise done on first use)."""
        return self._bridge(self._core.ensure())

    def flush(self) -> Any:
        """Wait until every call made so far has reached the store (its promise exists):
        what a short-lived caller, such as a Lambda handler, does before it answers."""
        return self._bridge(self._core.flush())

    def held(self) -> list[str]:
        """The ids of the tasks this process holds a lease on right now."""
        return list(self._core.worker.held)

    def hurry(self) -> None:
        """Make a ``stop()`` in progress (on any thread) end its grace now: what is still
        running is cancelled and its tasks released.  Safe from a signal handler."""
        core = self._core
        if core.thread is not None and core.thread.loop.is_running():
            core.thread.loop.call_soon_threadsafe(core.worker.hurry)

    def stop(self, grace: float | timedelta = 30.0) -> None:
        """Take no new work, let running tasks fulfill or suspend for up to ``grace``
        seconds, release the rest (another worker of the group takes them at once), close
        the network; ``await sustain.astop()`` in async code."""
        if caller_is_async():
            raise AsyncUsageError("Sustain.stop()", "await sustain.astop()")
        core = self._core
        if core.thread is None or not core.thread.loop.is_running():
            return
        core.thread.submit(core.stop(_seconds(grace))).result()
        core.thread.close()

    async def astop(self, grace: float | timedelta = 30.0) -> None:
        """``stop()`` for async code."""
        core = self._core
        if core.thread is None or not core.thread.loop.is_running():
            return
        await asyncio.wrap_future(core.thread.submit(core.stop(_seconds(grace))))
        await asyncio.to_thread(core.thread.close)  # joins the loop's thread: not on this loop

    def __enter__(self) -> Sustain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Sustain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.astop()

    # -- registration -----------------------------------------------------------------------
    # ``fn`` is returned as it is, with its own type: still callable, and ``run``/``rpc``
    # check their arguments against its signature (signatures.py).
    @overload
    def register(
        self, fn: F, *, name: str | None = None, version: int = 1, retry: RetryPolicy | None = None
    ) -> F: ...
    @overload
    def register(
        self, fn: None = None, *, name: str | None = None, version: int = 1,
        retry: RetryPolicy | None = None,
    ) -> Callable[[F], F]: ...  # fmt: skip
    def register(
        self,
        fn: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        version: int = 1,
        retry: RetryPolicy | None = None,
    ) -> Any:
        """Register ``fn`` (first parameter: the Context); also ``@sustain.register(...)``."""
        if fn is None:
            return lambda f: self.register(f, name=name, version=version, retry=retry)
        self._core.registry.add(fn, name=name, version=version, retry=retry)
        self._core.reannounce()
        return fn

    def set_dependency(self, name: str, obj: Any) -> None:
        self._core.env.dependencies[name] = obj

    def options(self, *, target: str | None = None, timeout: float | timedelta | None = None,
                version: int | None = None, tags: dict[str, str] | None = None,
                retry: RetryPolicy | None = None, queue: str | None = None,
                key: str | None = None, priority: int | None = None) -> Sustain:  # fmt: skip
        """A view of this Sustain whose calls use these options.  ``queue`` (with a ``key``
        and a ``priority``, smaller first) puts the calls on a queue (docs/queues.md)."""
        view = object.__new__(Sustain)
        view.__dict__.update(self.__dict__)
        view._opts = replace(
            self._opts,
            target=target if target is not None else self._opts.target,
            timeout=_seconds(timeout) if timeout is not None else self._opts.timeout,
            version=version if version is not None else self._opts.version,
            tags={**self._opts.tags, **(tags or {}), **queue_tags(queue, key, priority)},
            retry=retry or self._opts.retry,
        )
        return view

    # -- calls ------------------------------------------------------------------------------
    def _target(self) -> str:
        wanted = self._opts.target
        return ids.resolve_target(wanted) if wanted else self._core.network.anycast(self.group)

    def _promise(  # noqa: PLR0917 - the call
        self, id: str, func: str, version: int, args: Any, kwargs: Any,
        params: Parameters = NO_PARAMETERS,
    ) -> dict[str, Any]:  # fmt: skip
        # an argument that does not encode raises here, in the caller, before anything is sent
        param = codec.encode_invocation(func, args, kwargs, version, id, params)
        return {
            "id": id,
            "timeoutAt": self._core.env.clock.now() + int(self._opts.timeout * 1000),
            # the caller's current span (if tracing is on) becomes the execution's parent
            "param": trace_context.inject(param),
            "tags": ids.root_tags(id, self._target(), self._pinned(func, version)),
        }

    def _pinned(self, func: str, version: int) -> dict[str, str]:
        """The option tags, and the version pin (protocol/versions.py) when this process
        knows the version: named in the options, or the function is registered here."""
        if self._opts.version or self._core.registry.find_name(func) is not None:
            return {**self._opts.tags, **pin_tags(func, version)}
        return dict(self._opts.tags)

    # run and rpc are overloaded on the shapes of signatures.py (the handle's type is what
    # the function returns), then on a name, which stays untyped.
    @overload
    def run(self, id: str, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Handle[R]: ...
    @overload
    def run(
        self, id: str, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs
    ) -> Handle[R]: ...
    @overload
    def run(self, id: str, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> Handle[R]: ...
    @overload
    def run(self, id: str, fn: str, *args: Any, **kwargs: Any) -> Handle[Any]: ...
    def run(self, id: str, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Handle[Any]:
        """Run a registered function durably under ``id``; this process executes it if it
        wins the task.  The same id again returns the stored (or running) execution."""
        ids.validate_root(id)
        function = self._registered(fn)
        data = self._promise(id, function.name, function.version, args, kwargs, function.params)
        record = self._core.loop().submit(self._run(data))
        return self._handle(Handle(id, record, function.returns, self._explain))

    begin_run = run

    @overload
    def rpc(self, id: str, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Handle[R]: ...
    @overload
    def rpc(
        self, id: str, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs
    ) -> Handle[R]: ...
    @overload
    def rpc(self, id: str, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> Handle[R]: ...
    @overload
    def rpc(self, id: str, fn: str, *args: Any, **kwargs: Any) -> Handle[Any]: ...
    def rpc(self, id: str, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Handle[Any]:
        """Invoke a function (by name, or registered) on the target's workers under ``id``."""
        ids.validate_root(id)
        if isinstance(fn, str):  # registered here too: its annotations still apply
            name, version = fn, self._version_of(fn)
            function = self._core.registry.lookup(name, version)
        else:
            function = self._registered(fn)
            name, version = function.name, function.version
        returns = function.returns if function is not None else None
        params = function.params if function is not None else NO_PARAMETERS
        data = self._promise(id, name, version, args, kwargs, params)
        record = self._core.loop().submit(self._rpc(data))
        return self._handle(Handle(id, record, returns, self._explain))

    begin_rpc = rpc

    def get(self, id: str) -> Handle[Any]:
        """A handle on an existing promise."""
        ids.validate_child(id)
        record = self._core.loop().submit(self._watch(id))
        return self._handle(Handle(id, record, explain=self._explain))

    def _handle(self, handle: Handle[Any]) -> Handle[Any]:
        handle.canceler = self.cancel
        handle.reporter = self.status
        return handle

    def status(self, id: str) -> Any:
        """The ``ExecutionStatus`` of ``id`` (sdk/status.py); awaitable in async code."""
        return self._bridge(status.read(self._core.ensure, id, self._core.env.clock))

    def cancel(self, id: str, *, detached: bool = False) -> Any:
        """Cancel the execution ``id`` and its pending descendants (protocol/cancel.py): each
        is settled ``rejected_canceled``, so whoever awaits them gets ``CanceledError`` and
        their workers stop them.  Detached calls are left running unless ``detached``.
        Returns a ``CancelReport`` (awaitable in async code); an execution already settled
        is left as it is (``report.noop``).  Raises ``ServerError`` on an error answer
        (404 for an unknown id)."""
        ids.validate_child(id)
        return self._bridge(self._cancel(id, detached))

    async def _cancel(self, id: str, detached: bool) -> CancelReport:
        network = await self._core.ensure()

        async def request(kind: str, data: dict[str, Any]) -> tuple[int, Any]:
            answer = await network.request(kind, data)
            return answer.status, answer.data

        try:
            return await drive_async(walk(id, detached=detached), request)
        except CancelFailed as exc:
            raise ServerError(exc.status, exc.message, "cancel") from None

    def retry(self, id: str, *, from_step: int | None = None, new_id: str | None = None) -> Any:
        """Run the failed execution ``id`` again under ``new_id`` (default ``<id>~retry-<n>``),
        what resolved in it taken over (only the steps before ``from_step`` if given): its
        ``Handle``, awaitable in async code; ``RetryRefusedError`` if it did not fail."""
        return self._bridge(self._retry(forking.request(id, new_id, from_step)))

    async def _retry(self, data: dict[str, Any]) -> Handle[Any]:
        promise = (await forking.send(await self._core.ensure(), data))["promise"]
        record = self._core.loop().submit(self._watch(promise["id"]))
        returns = forking.returns(self._core.registry, promise)
        return self._handle(Handle(promise["id"], record, returns, self._explain))

    @overload
    def schedule(
        self, name: str, cron: str, fn: Step[P, object], *args: P.args, **kwargs: P.kwargs
    ) -> Any: ...
    @overload
    def schedule(self, name: str, cron: str, fn: str, *args: Any, **kwargs: Any) -> Any: ...
    def schedule(
        self, name: str, cron: str, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any
    ) -> Any:
        """Run ``fn(*args, **kwargs)`` on the cron expression; promise ids ``name.<tick ms>``."""
        ids.validate_root(name)
        if isinstance(fn, str):
            func, version = fn, self._version_of(fn)
            params = NO_PARAMETERS
        else:
            function = self._registered(fn)
            func, version, params = function.name, function.version, function.params
        return self.schedules.create(
            name, cron, promise_id=f"{{{{.id}}}}{ids.SEP}{{{{.timestamp}}}}",
            promise_timeout_ms=int(self._opts.timeout * 1000),
            param=codec.encode_invocation(func, args, kwargs, version, params=params),
            tags={**self._pinned(func, version), ids.TARGET: self._target()},
        )  # fmt: skip

    def _version_of(self, name: str) -> int:
        """The version to ask for by name: the option, else the latest registered here, else 1."""
        if self._opts.version:
            return self._opts.version
        try:
            return self._core.registry.get(name).version
        except FunctionNotFoundError:
            return 1

    def _registered(self, fn: Callable[..., Any] | str) -> Function:
        if isinstance(fn, str):
            return self._core.registry.get(fn, self._opts.version)
        found = self._core.registry.find(fn)
        if found is None:
            raise FunctionNotFoundError(getattr(fn, "__name__", repr(fn)))
        return found

    # The requests of a call, and its wait, are in starts.py.
    async def _run(self, promise: dict[str, Any]) -> dict[str, Any]:
        return await start_run(self._core, promise, self._strict)

    async def _rpc(self, promise: dict[str, Any]) -> dict[str, Any]:
        return await start_rpc(self._core, promise, self._strict)

    async def _watch(self, id: str) -> dict[str, Any]:
        await self._core.ensure()
        return await settled(self._core, id)

    def _explain(self, id: str) -> concurrent.futures.Future[list[str]]:
        """What ``id`` waits on (for a timed-out ``result()``), on this Sustain's loop."""
        return self._core.loop().submit(self._explained(id))

    async def _explained(self, id: str) -> list[str]:
        env = self._core.env
        return await waiting.explain(await self._core.ensure(), id, env.retrying, env.clock.now())
