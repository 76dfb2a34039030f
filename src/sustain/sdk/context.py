"""``Context``: what a durable function uses to make durable calls.

Each method fixes the child's id synchronously (the parent's counter, in call order),
describes the call as a ``Call`` and hands it to the replay pass, which starts it at once and
returns a ``DurableFuture``.  ``run``/``rpc``/``sleep``/``promise``/``detached`` and the
checkpointed ``now``/``random``/``uuid`` all give a future (``await`` it or ``yield`` it);
``begin_run``/``begin_rpc`` give a ``Begin`` so generators can hold the future.
``options(...)`` returns a view of the same context whose next calls use those options.
For a type checker, ``run``/``rpc``/``begin_*`` take the called function's own parameters
and give ``DurableFuture[R]`` (``Begin[R]``) of its result (the overloads of signatures.py).
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from sustain.sdk import ids, patches
from sustain.sdk.futures import Begin, DurableFuture
from sustain.sdk.queues import queue_tags
from sustain.sdk.registry import Function
from sustain.sdk.retry import RetryPolicy
from sustain.sdk.signatures import AsyncFunction, P, R, S, Step, Workflow, Y

if TYPE_CHECKING:
    from sustain.sdk.replay import ReplayPass

Kind = Literal["run", "rpc", "sleep", "promise", "detached"]
T = TypeVar("T")


@dataclass(frozen=True)
class Info:
    id: str
    parent_id: str
    origin_id: str
    branch_id: str
    timeout_at: int
    func_name: str
    version: int
    attempt: int

    @property
    def timeout(self) -> int:
        return self.timeout_at


@dataclass(frozen=True)
class CallOptions:
    target: str | None = None
    timeout: float | None = None  # seconds
    retry: RetryPolicy | None = None
    id: str | None = None
    version: int | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    kind: Kind
    id: str
    func: str  # what the nondeterminism check compares with the recorded call
    parent: Context
    function: Function | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    target: str | None = None
    timeout_at: int = 0
    retry: RetryPolicy | None = None
    version: int = 1
    tags: dict[str, str] = field(default_factory=dict)
    # The id the counter minted when an explicit id replaced it: where the replay records
    # the link from the caller to a promise of another origin (SDK-WIRE §2.1).
    slot: str | None = None
    version_named: bool = False  # ``options(version=N)``: the call is pinned to N


_NO_OPTIONS = CallOptions()  # frozen, and its tags are copied, never changed in place


def seconds(duration: float | timedelta) -> float:
    return duration.total_seconds() if isinstance(duration, timedelta) else float(duration)


class _Counter:
    __slots__ = ("n", "patching")

    def __init__(self) -> None:
        self.n = 0
        # The name of a ``patched()`` whose answer is not known yet: until it is, the next
        # call's id is not known either (sdk/patches.py).
        self.patching: str | None = None


class Context:
    def __init__(
        self,
        pass_: ReplayPass,
        info: Info,
        branch: str,
        opts: CallOptions | None = None,
        counter: _Counter | None = None,
    ) -> None:
        self._pass = pass_
        self.info = info
        self.id = info.id
        self.branch = branch
        self._opts = opts or _NO_OPTIONS
        self._counter = counter or _Counter()

    # -- options ------------------------------------------------------------------------
    def options(
        self,
        *,
        target: str | None = None,
        timeout: float | timedelta | None = None,
        retry: RetryPolicy | None = None,
        id: str | None = None,
        version: int | None = None,
        tags: dict[str, str] | None = None,
        queue: str | None = None,
        key: str | None = None,
        priority: int | None = None,
    ) -> Context:
        """A view of this context whose next call uses these options.  ``queue``, ``key``
        and ``priority`` put an ``rpc`` on a queue (docs/queues.md); a ``run`` has no task
        of its own and runs in this process, outside any queue."""
        opts = replace(
            self._opts,
            target=target if target is not None else self._opts.target,
            timeout=seconds(timeout) if timeout is not None else self._opts.timeout,
            retry=retry or self._opts.retry,
            id=ids.validate_child(id) if id is not None else None,
            version=version if version is not None else self._opts.version,
            tags={**self._opts.tags, **(tags or {}), **queue_tags(queue, key, priority)},
        )
        return Context(self._pass, self.info, self.branch, opts, self._counter)

    def retried(self, attempt: int) -> Context:
        """A fresh context for another attempt: same ids again, ``info.attempt`` updated."""
        return Context(self._pass, replace(self.info, attempt=attempt), self.branch, self._opts)

    def get_dependency(self, name: str) -> Any:
        return self._pass.dependency(name)

    # -- ids and deadlines --------------------------------------------------------------
    @property
    def calls(self) -> int:
        """How many durable calls this context has made (a leaf makes none)."""
        return self._counter.n

    def _next_id(self) -> str:
        if self._counter.patching is not None:
            raise patches.waiting(self, "a durable call")
        self._counter.n += 1
        return self._opts.id or ids.child(self.id, self._counter.n)

    def _slot(self) -> str | None:
        """The minted id of the call just numbered, when an explicit id took its place."""
        return ids.child(self.id, self._counter.n) if self._opts.id else None

    def _timeout_at(self, explicit: float | None = None) -> int:
        wanted = explicit if explicit is not None else self._opts.timeout
        if wanted is None:
            return self.info.timeout_at
        return min(self.info.timeout_at, self._now_ms() + int(wanted * 1000))

    def _now_ms(self) -> int:
        # The worker's clock (runtime/clock.py), never time.time(): a test's virtual time
        # must reach every deadline a call is created with.
        return self._pass.env.clock.now()

    def _start(self, call: Call) -> DurableFuture[Any]:
        return self._pass.start(call)

    # -- durable calls ------------------------------------------------------------------
    # Each is overloaded on the shapes of signatures.py (generator, coroutine, plain: the
    # future's type is what the function returns) and then on a name, which stays untyped.
    @overload
    def run(self, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> DurableFuture[R]: ...
    @overload
    def run(
        self, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs
    ) -> DurableFuture[R]: ...
    @overload
    def run(self, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> DurableFuture[R]: ...
    @overload
    def run(self, fn: str, *args: Any, **kwargs: Any) -> DurableFuture[Any]: ...
    def run(
        self, fn: Callable[..., Any] | str | Function, *args: Any, **kwargs: Any
    ) -> DurableFuture[Any]:
        """Run ``fn`` in this process as a checkpointed child."""
        return self._run(self._pass.resolve(fn, self._opts.version), args, kwargs)

    def _run(self, function: Function, args: Any, kwargs: Any) -> DurableFuture[Any]:
        call = Call(
            "run", self._next_id(), function.name, self, function, args, kwargs,
            timeout_at=self._timeout_at(), retry=self._opts.retry,
            version=function.version, tags=dict(self._opts.tags),
        )  # fmt: skip
        return self._start(call)

    @overload
    def begin_run(self, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_run(self, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_run(self, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_run(self, fn: str, *args: Any, **kwargs: Any) -> Begin[Any]: ...
    def begin_run(self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Begin[Any]:
        return Begin(self.run(fn, *args, **kwargs))

    @overload
    def rpc(self, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> DurableFuture[R]: ...
    @overload
    def rpc(
        self, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs
    ) -> DurableFuture[R]: ...
    @overload
    def rpc(self, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> DurableFuture[R]: ...
    @overload
    def rpc(self, fn: str, *args: Any, **kwargs: Any) -> DurableFuture[Any]: ...
    def rpc(self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> DurableFuture[Any]:
        """Run ``fn`` (by name, or a registered function) wherever its target's workers are."""
        name, version = self._pass.name_of(fn, self._opts.version)
        call = Call(
            "rpc", self._next_id(), name, self, None, args, kwargs,
            target=self._pass.target(self._opts.target), timeout_at=self._timeout_at(),
            version=version, tags=dict(self._opts.tags), slot=self._slot(),
            version_named=bool(self._opts.version),
        )  # fmt: skip
        return self._start(call)

    @overload
    def begin_rpc(self, fn: Workflow[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_rpc(self, fn: AsyncFunction[P, Y, S, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_rpc(self, fn: Step[P, R], *a: P.args, **kw: P.kwargs) -> Begin[R]: ...
    @overload
    def begin_rpc(self, fn: str, *args: Any, **kwargs: Any) -> Begin[Any]: ...
    def begin_rpc(self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Begin[Any]:
        return Begin(self.rpc(fn, *args, **kwargs))

    # What a detached call gives is the new execution's id, not its result.
    @overload
    def detached(self, fn: Step[P, object], *a: P.args, **kw: P.kwargs) -> DurableFuture[str]: ...
    @overload
    def detached(self, fn: str, *args: Any, **kwargs: Any) -> DurableFuture[str]: ...
    def detached(
        self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any
    ) -> DurableFuture[str]:
        """Start ``fn`` as a new root-like lineage; the future gives its id at once."""
        name, version = self._pass.name_of(fn, self._opts.version)
        would_be = self._next_id()
        id = self._opts.id or ids.detached(ids.origin_of(self.id), would_be)
        timeout = self._opts.timeout if self._opts.timeout is not None else 86400.0
        call = Call(
            "detached", id, name, self, None, args, kwargs,
            target=self._pass.target(self._opts.target),
            timeout_at=self._now_ms() + int(timeout * 1000), version=version,
            tags=dict(self._opts.tags), version_named=bool(self._opts.version),
        )  # fmt: skip
        return self._start(call)

    def sleep(self, duration: float | timedelta) -> DurableFuture[None]:
        """A durable timer: no worker holds anything while it runs; no upper bound."""
        wait = seconds(duration)
        call = Call(
            "sleep", self._next_id(), "sleep", self,
            target=self._pass.target(None),
            timeout_at=min(self.info.timeout_at, self._now_ms() + int(wait * 1000)),
        )  # fmt: skip
        return self._start(call)

    def promise(self, timeout: float | timedelta | None = None) -> DurableFuture[Any]:
        """A promise others settle (human in the loop); its id is ``future.id``."""
        at = self._timeout_at(seconds(timeout) if timeout is not None else None)
        call = Call("promise", self._next_id(), "promise", self, timeout_at=at,
                    tags=dict(self._opts.tags), slot=self._slot())  # fmt: skip
        return self._start(call)

    # -- patches (sdk/patches.py, docs/deploying.md) ----------------------------------------
    def patched(self, name: str) -> patches.PatchFuture:
        """Whether this execution takes the new branch of patch ``name``: True for an
        execution that reaches this point with this code (the choice is recorded), False for
        one that went past it before the patch.  ``yield`` or ``await`` the answer."""
        if self._counter.patching is not None:
            raise patches.waiting(self, "ctx.patched()")
        return patches.patched(self, name)

    def deprecate_patch(self, name: str) -> None:
        """The cleanup of patch ``name`` once no execution runs its old branch: executions
        that recorded the patch replay, new ones record nothing.  A plain call."""
        patches.deprecate(self, name)

    # -- checkpointed nondeterminism ---------------------------------------------------
    def now(self) -> DurableFuture[float]:
        """Wall-clock time in seconds, recorded once and replayed."""
        return self._builtin("sustain.now", _now)

    def random(self) -> DurableFuture[float]:
        """A float in [0, 1), recorded once and replayed."""
        return self._builtin("sustain.random", _rand)

    def uuid(self) -> DurableFuture[str]:
        """A uuid4 hex string, recorded once and replayed."""
        return self._builtin("sustain.uuid", _uuid4)

    def _builtin(
        self, name: str, fn: Callable[[Context], Coroutine[Any, Any, T]]
    ) -> DurableFuture[T]:
        future: DurableFuture[T] = self._run(self._pass.builtin(name, fn), (), {})
        return future


# Coroutines, not plain functions: a sync leaf runs in a thread (it may block), and a hop
# to a thread and back for the clock would cost more than the value itself.
async def _now(ctx: Context) -> float:
    return ctx._now_ms() / 1000


async def _rand(ctx: Context) -> float:
    return _random.random()


async def _uuid4(ctx: Context) -> str:
    return _uuid.uuid4().hex
