"""Replay a recorded history against (new) code, running no leaf: the deploy check
(``sustain check``) and ``sustain.testing.replay``.

Theory of operation: the root function runs once from the top with a real ``Context``
whose pass (``HistoryPass``, a ``ReplayPass``) answers every durable call from the history
instead of the store.  The replay path is the worker's own (replay.py): the same ids are
minted, the recorded function of each child is compared with the call now made (``_check``,
the check a worker makes), and a settled child gives its stored value or error.  What a
worker would *do* is left out, so nothing is written and no user code beyond the workflow
body runs:

* a recorded pending child (a sleep, an rpc, a ``ctx.run`` step cut short by a crash)
  suspends the workflow there, as a worker's pass would;
* a call with no record is either the *frontier* (nothing later is recorded: it is where
  the execution stands now, and new code may call anything there) and suspends the replay
  without running it, or it *diverges*: the history went past that point (a later step is
  recorded, or the execution completed), so the old code made another call here;
* a workflow that returns while the history holds later steps diverges at the first of them;
* ``ctx.patched`` follows the same rules with its marker as the step (patches.py): at the
  frontier it stops the replay without writing the marker; past it (the history went on, or
  ended) the old code made no patch there and it answers False.

Every divergence is a ``NondeterminismError`` with the step's number (the calling context's
call counter: 1 for the first durable call), the recorded function and the one now called.
When several calls diverge concurrently the lowest step is reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sustain.errors import (
    Cancel,
    NondeterminismError,
    SerializationError,
    Suspend,
    SustainError,
)
from sustain.protocol import callgraph
from sustain.protocol.history import History
from sustain.runtime.clock import Clock
from sustain.sdk import codec, ids
from sustain.sdk.context import Call, Context, Info
from sustain.sdk.futures import PENDING, Outcome
from sustain.sdk.invoke import invoke
from sustain.sdk.network import Announce, Answer, MessageHandler, PollAddresses
from sustain.sdk.registry import Function, Registry
from sustain.sdk.replay import ReplayPass, WorkerState

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain

Status = Literal["completed", "failed", "suspended", "not-run"]
RETURNED = "nothing (the workflow returns)"
ENDED = "nothing (the execution ended)"


@dataclass(frozen=True)
class ReplayReport:
    """How a replay ended when it did not diverge: ``completed`` (``value``), ``failed``
    (``error``, raised by the workflow itself), ``suspended`` at the execution's frontier
    (a pending child, or the first call the history has no record of), or ``not-run``: the
    function may be a leaf, whose body a replay never runs (``replay_history``)."""

    id: str
    status: Status
    steps: int  # durable calls the workflow made
    value: Any = None
    error: BaseException | None = field(default=None, compare=False)


class Offline(PollAddresses):
    """The network of a replay: it has addresses (a call's target) and answers nothing."""

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def request(self, kind: str, data: Mapping[str, Any], durable: bool = True) -> Answer:
        raise SustainError(f"a history replay sends no requests (it tried {kind})")

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        return None

    async def unlisten(self, group: str, pid: str) -> None:
        return None

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        return None


def recorded_call(history: History, record: Mapping[str, Any] | None) -> str:
    """What the history recorded in a slot: a function name, ``sleep``, ``promise``."""
    if record is None:
        return "nothing"
    target = callgraph.link_of(dict(record))
    if target is not None:  # a link record: the call is the linked promise
        linked = history.promises.get(target)
        return recorded_call(history, linked) if linked is not None else f"a call of {target!r}"
    node = callgraph.CallNode(dict(record))
    func = node.func
    return func if func is not None else node.kind


def _slots(history: History) -> dict[int, dict[str, Any]]:
    """The recorded calls of the root's own context, by step: ``<root>:<n>`` ids."""
    prefix = ids.child(history.root_id, 0)[:-1]  # the root's id and its separator
    slots: dict[int, dict[str, Any]] = {}
    for pid, record in history.promises.items():
        rest = pid[len(prefix) :] if pid.startswith(prefix) else ""
        if rest.isdigit():
            slots[int(rest)] = record
    return slots


class HistoryPass(ReplayPass):
    """A replay pass whose durable calls are answered by a history (module docstring)."""

    def __init__(self, env: WorkerState, history: History) -> None:
        super().__init__(env, history.root_id, 0, dict(history.promises))
        self.history = history
        self.slots = _slots(history)
        self.last_slot = max(self.slots, default=0)
        self.ended = history.root.get("state") != "pending"

    # The base pass assigns every divergence it meets here; concurrent calls may meet
    # several, in any order: the lowest step is the one reported.
    @property
    def nondeterminism(self) -> NondeterminismError | None:
        return self._first

    @nondeterminism.setter
    def nondeterminism(self, exc: NondeterminismError | None) -> None:
        first = getattr(self, "_first", None)
        if exc is None or first is None or (exc.step or 0) < (first.step or 0):
            self._first = exc if exc is not None else first

    async def _op_inner(self, call: Call) -> Outcome:
        step = call.parent.calls
        try:
            param = self._param(call)
        except SerializationError as exc:
            return Outcome(error=exc)
        record = self.cache.get(call.id)
        if record is None:
            return self._unrecorded(call, step)
        try:
            self._check(call, record, param)
        except NondeterminismError as exc:
            raise self.diverged(call.id, step, exc.recorded, exc.found) from None
        if record["state"] != "pending":
            return self._settled(call, record)
        if call.kind == "detached":
            return Outcome(call.id)
        self.todos[call.id] = None  # where a worker would suspend: the replay ends here too
        return Outcome(PENDING)

    def _unrecorded(self, call: Call, step: int) -> Outcome:
        if self.last_slot > step or self.ended:
            recorded = recorded_call(self.history, self.slots.get(step))
            if recorded == "nothing" and self.ended and self.last_slot <= step:
                recorded = ENDED
            raise self.diverged(call.id, step, recorded, call.func)
        if call.kind == "detached":
            return Outcome(call.id)  # started, not awaited: the workflow goes on
        self.todos[call.id] = None  # the frontier: the next thing this execution does
        return Outcome(PENDING)

    async def marker(self, data: dict[str, Any], step: int) -> dict[str, Any] | None:
        """``ctx.patched`` found nothing at its slot (step ``step``).  At the frontier it is
        where the execution stands now: like any call there, it is not made and the replay
        stops (a worker would write the marker and take the new branch).  Past it (a later
        step is recorded, or the execution ended), the old code went on without the patch:
        no marker there, so the patch answers False, as it would to a step at the slot."""
        if self.last_slot > step or self.ended:
            return {}
        self.todos[str(data["id"])] = None
        return None

    def _chain_settle(self, id: str, state: str, wire: dict[str, Any]) -> None:
        """A replay writes nothing: a marker a crash left pending replays as the marker."""

    def diverged(self, id: str, step: int, recorded: str, found: str) -> NondeterminismError:
        return NondeterminismError(id, recorded, found, step=step)

    def leftover(self, made: int) -> NondeterminismError | None:
        """The divergence of a workflow that ended after ``made`` calls, if the history
        recorded more."""
        later = [n for n in self.slots if n > made]
        if not later:
            return None
        step = min(later)
        record = self.slots[step]
        return self.diverged(str(record["id"]), step, recorded_call(self.history, record),
                             RETURNED)  # fmt: skip


async def replay_history(
    history: History,
    registry: Registry,
    function: Function | None = None,
    *,
    group: str = "default",
    dependencies: Mapping[str, Any] | None = None,
) -> ReplayReport:
    """Replay ``history`` with ``function`` (default: the registered function the root
    names); ``NondeterminismError`` at the first diverging step."""
    root = history.root
    inv = codec.decode_invocation(root.get("param"), history.root_id)
    if function is None:
        function = registry.get(inv.func, inv.version)
    if function.style == "sync" or (function.style == "coroutine" and not _slots(history)):
        # A plain def cannot make durable calls: it is a leaf, and so may be an async def
        # that recorded none (the two look alike until the body runs).  Running it would do
        # its work again (send the email...); there is nothing to compare anyway.
        return ReplayReport(history.root_id, "not-run", 0)
    env = WorkerState(Offline(), registry, group, "replay", 0, Clock(), dict(dependencies or {}))
    p = HistoryPass(env, history)
    tags = root.get("tags") or {}
    id = history.root_id
    branch = tags.get(ids.BRANCH) or id
    info = Info(
        id, tags.get(ids.PARENT, id), ids.origin_of(id), branch, int(root.get("timeoutAt", 0)),
        function.name, function.version, 1,
    )  # fmt: skip
    ctx = Context(p, info, branch)
    value: Any = None
    error: BaseException | None = None
    status: Status = "completed"
    try:
        value = await invoke(function, ctx, inv.args, inv.kwargs)
    except Suspend:
        status = "suspended"
    except Cancel:  # a call failed inside the pass: its cause is ``p.failure``
        status = "failed"
    except Exception as exc:
        status, error = "failed", exc
    await p.join()
    if p.nondeterminism is not None:
        raise p.nondeterminism
    if p.failure is not None:
        raise p.failure
    if status == "suspended" or p.todos:
        return ReplayReport(id, "suspended", ctx.calls)
    # A workflow that raises is reported as failing where it does, not by the steps the old
    # code made after that point.
    extra = p.leftover(ctx.calls) if status == "completed" else None
    if extra is not None:
        raise extra
    return ReplayReport(id, status, ctx.calls, value, error)


def app_parts(app: Sustain) -> tuple[Registry, dict[str, Any], str]:
    """The registry, dependencies and group a worker of ``app`` replays with."""
    env = app._core.env
    return env.registry, env.dependencies, env.group


def run(coro: Coroutine[Any, Any, ReplayReport]) -> ReplayReport:
    """``asyncio.run`` for the synchronous entry points (a test, the CLI)."""
    return asyncio.run(coro)
