"""``crash_test``: does an execution survive a crash at every checkpoint?

Theory of operation.  A checkpoint is a write the SDK makes to the store on an execution's
behalf (``CHECKPOINTS``: the root's ``task.create``, each step's create and settle, a
suspend, the final ``task.fulfill``).  The execution first runs once without a crash, which
numbers its checkpoints 1..N and gives the expected result.  Then, for every k, it runs
twice more, each time on a fresh in-memory store:

* **before k**: the k-th checkpoint never reaches the store;
* **after k**: it is stored, and its answer never reaches the SDK.

Either way the process "dies" there (``CrashingNetwork``): from that moment its every
request fails and no message reaches it, so nothing more of it lands in the store, and its
virtual time stands still; it is then stopped and thrown away, with every in-memory thing
of the SDK (handles, replay caches, leases held, leaf results not yet saved).  A fresh
process over the same store (incarnation.py) starts, takes over what the dead one held, and
calls the same id again, as a restarted caller would.  Its result must equal the expected
one; otherwise ``CrashTestFailure`` names the crash and the steps that ran again, the
suspects for a step that is not idempotent.

Every scenario starts at the same virtual time, so ``ctx.now()`` does not tell them apart.
``CrashReport.runs`` counts, per function, how often its body started (both processes
together), so a test can also assert that each step ran at most once more than without a
crash (``report.max_runs``), i.e. once per completed checkpoint.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sustain.errors import SustainError
from sustain.sdk.handles import Handle
from sustain.sdk.local import LocalNetwork
from sustain.sdk.network import Announce, Answer, MessageHandler, NetworkStopped
from sustain.store.memory import MemoryStore
from sustain.testing.clock import VirtualClock
from sustain.testing.env import GROUP, SustainEnv
from sustain.testing.incarnation import Incarnation

log = logging.getLogger(__name__)

CHECKPOINTS = frozenset({
    "task.create", "task.acquire", "task.fence", "task.suspend", "task.fulfill",
    "promise.create", "promise.settle", "promise.register_callback",
})  # fmt: skip
RUN_TIMEOUT_S = 60.0  # real seconds one scenario may take (virtual time is free)


def _subject(kind: str, data: Mapping[str, Any]) -> str | None:
    """The promise a checkpoint is about (a fence's or a task.create's action's own)."""
    action = data.get("action")
    if isinstance(action, dict):
        inner = action.get("data")
        if isinstance(inner, dict) and isinstance(inner.get("id"), str):
            return str(inner["id"])
    found = data.get("id") or data.get("awaited")
    return str(found) if isinstance(found, str) else None


class CrashingNetwork(LocalNetwork):
    """A ``LocalNetwork`` whose process dies at its ``crash_at``-th checkpoint, before or
    ``after`` the store has it (see the module docstring)."""

    def __init__(self, *, crash_at: int | None, after: bool, **kwargs: Any) -> None:
        super().__init__(":memory:", **kwargs)
        self.crash_at = crash_at
        self.after = after
        self.checkpoints: list[tuple[str, str | None]] = []
        self.crashed = threading.Event()
        self.on_crash: Callable[[], None] = lambda: None

    async def request(self, kind: str, data: Mapping[str, Any], durable: bool = True) -> Answer:
        if self.crashed.is_set():
            raise NetworkStopped("the process crashed (sustain.testing crash_test)")
        if kind in CHECKPOINTS:
            self.checkpoints.append((kind, _subject(kind, data)))
            if len(self.checkpoints) == self.crash_at:
                if self.after:
                    await super().request(kind, data, durable)
                self.crashed.set()
                self.on_crash()
                raise NetworkStopped("the process crashed (sustain.testing crash_test)")
        return await super().request(kind, data, durable)

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        def deliver(message: dict[str, Any]) -> None:
            if not self.crashed.is_set():  # a dead process receives nothing
                on_message(message)

        super().listen(group, pid, deliver, functions)


@dataclass(frozen=True)
class Scenario:
    """One crash: at checkpoint ``checkpoint`` (1-based), ``when`` "before" or "after" the
    store had it; ``request`` is that checkpoint's request kind and ``step`` its promise."""

    checkpoint: int
    when: str
    request: str
    step: str | None
    outcome: Any
    runs: dict[str, int]

    def __str__(self) -> str:
        return f"a crash just {self.when} checkpoint {self.checkpoint} ({self.request} {self.step})"


@dataclass
class CrashReport:
    """What ``crash_test`` saw: the result without a crash, its checkpoints, how often each
    function's body started without a crash (``runs``) and in each crash (``scenarios``)."""

    outcome: Any
    checkpoints: list[tuple[str, str | None]]
    runs: dict[str, int]
    scenarios: list[Scenario] = field(default_factory=list)

    def max_runs(self, name: str) -> int:
        """The most times ``name``'s body started in one crash scenario (both processes)."""
        return max((s.runs.get(name, 0) for s in self.scenarios), default=self.runs.get(name, 0))

    def reran(self, name: str) -> list[Scenario]:
        """The scenarios in which ``name`` ran more often than without a crash."""
        return [s for s in self.scenarios if s.runs.get(name, 0) > self.runs.get(name, 0)]


class CrashTestFailure(SustainError, AssertionError):
    """A crash changed the execution's outcome: ``scenario`` (the crash), ``expected`` (the
    outcome without a crash), ``got``, and ``suspects``: the functions that ran more often
    than without a crash, one of which is not idempotent."""

    def __init__(self, scenario: Scenario, expected: Any, suspects: list[str]) -> None:
        self.scenario = scenario
        self.expected = expected
        self.got = scenario.outcome
        self.suspects = suspects
        again = ", ".join(suspects) or "none"
        super().__init__(
            f"after {scenario} and recovery the execution gave {self.got!r}, not "
            f"{expected!r} as without a crash; steps that ran again: {again}"
        )


def _outcome(handle: Handle) -> Any:
    """The value, or ``(exception type, message)``: comparable across processes."""
    try:
        return handle.result(timeout=RUN_TIMEOUT_S)
    except SustainError as exc:
        return (type(exc).__name__, str(exc))


def _stop(incarnation: Incarnation) -> None:
    """Throw a (crashed) process away: whatever its stop raises, its loop thread ends."""
    try:
        incarnation.stop(grace=0)
    except Exception:  # a dead process's stop may fail on its dead network: expected
        log.debug("stopping a crashed process failed", exc_info=True)
    finally:
        thread = incarnation.sustain._core.thread
        if thread is not None:
            thread.close()


def _wait_crash_or_end(handle: Handle, network: CrashingNetwork) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not handle.done() and not network.crashed.wait(0.002):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{handle.id} neither ended nor crashed in {RUN_TIMEOUT_S} s")


def _scenario(
    env: SustainEnv, start_ms: int, id: str, call: tuple[Any, tuple[Any, ...], dict[str, Any]],
    *, crash_at: int | None, after: bool, before_each: Callable[[], None] | None,
) -> tuple[Any, list[tuple[str, str | None]], dict[str, int]]:  # fmt: skip
    fn, args, kwargs = call
    if before_each is not None:
        before_each()
    store = MemoryStore()
    runs: collections.Counter[str] = collections.Counter()

    def count(name: str, _id: str) -> None:
        runs[name] += 1

    clock = VirtualClock(start_ms)
    network = CrashingNetwork(crash_at=crash_at, after=after, clock=clock, store=store)
    first = Incarnation(network, clock, env.registrations, GROUP)
    network.on_crash = first.driver.halt
    first.observe(count)
    try:
        first.start(auto_skip=True)  # nobody is there to move time by hand
        calls = first.sustain.options(**env.call_options)
        handle = first.make_call(lambda: calls.run(id, fn, *args, **kwargs))
        _wait_crash_or_end(handle, network)
        if not network.crashed.is_set():
            return _outcome(handle), network.checkpoints, dict(runs)
    finally:
        _stop(first)
    clock = VirtualClock(clock.now())  # time goes on; the dead loop's waits stay behind
    second = Incarnation(
        LocalNetwork(":memory:", clock=clock, store=store), clock, env.registrations, GROUP
    )
    second.observe(count)
    try:
        second.start(auto_skip=True)
        calls = second.sustain.options(**env.call_options)
        handle = second.make_call(lambda: calls.run(id, fn, *args, **kwargs))
        return _outcome(handle), network.checkpoints, dict(runs)
    finally:
        _stop(second)


def crash_test(
    env: SustainEnv,
    fn: Callable[..., Any] | str,
    *args: Any,
    before_each: Callable[[], None] | None = None,
    **kwargs: Any,
) -> CrashReport:
    """Run ``fn(*args, **kwargs)`` once, then crash it before and after each checkpoint
    and recover (see the module docstring).  Returns the ``CrashReport``; raises
    ``CrashTestFailure`` at the first crash that changes the outcome.

    Each run starts on an empty store: ``before_each`` (if given) is called before each
    run, to empty the fakes of the outside world the steps write to as well (a list of
    charges, an outbox), so that a step's second run shows in the outcome."""
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", "call")
    id, start_ms, call = f"{name}-crash", env.clock.now(), (fn, args, kwargs)
    expected, checkpoints, runs = _scenario(
        env, start_ms, id, call, crash_at=None, after=False, before_each=before_each
    )
    report = CrashReport(expected, checkpoints, runs)
    for k, (kind, step) in enumerate(checkpoints, start=1):
        for after in (False, True):
            outcome, _, ran = _scenario(
                env, start_ms, id, call, crash_at=k, after=after, before_each=before_each
            )
            scenario = Scenario(k, "after" if after else "before", kind, step, outcome, ran)
            report.scenarios.append(scenario)
            if outcome != expected:
                # The workflow's own body replays from the top after a crash: expected.
                suspects = sorted(n for n, c in ran.items() if c > runs.get(n, 0) and n != name)
                raise CrashTestFailure(scenario, expected, suspects)
    return report
