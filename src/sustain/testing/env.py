"""``SustainEnv``: a test environment for your own durable functions.

An embedded ``Sustain`` over an in-memory store whose time is a ``VirtualClock``: timers,
timeouts, retries and schedules fire when the test moves time (``advance``), or, with
``auto_skip`` (the default), as soon as every execution is blocked on time, so a
``ctx.sleep(days=30)`` returns at once.  Nothing else is faked: the store, the engine, the
server's timer and outbox loops and the SDK's worker are the real ones, in this process.

``run`` and ``rpc`` draw the execution's id (``<function>-<n>``) and return the ``Handle``
that ``Sustain.run`` would; ``sustain`` is the ``Sustain`` itself for anything else (an id
of your own, ``options``, ``promises``, ``schedule``).  ``crash_test`` (crash.py) checks
that an execution survives a crash at every checkpoint, ``replay`` (the seam of
``sustain.testing.replay``) re-runs new code against a recorded execution.

Use it as the ``sustain_env`` pytest fixture (plugin.py), or as a context manager.
"""

from __future__ import annotations

import importlib
import itertools
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sustain.protocol import callgraph
from sustain.sdk.client import Sustain
from sustain.sdk.handles import Handle
from sustain.sdk.local import LocalNetwork
from sustain.store.memory import MemoryStore
from sustain.testing.clock import VirtualClock
from sustain.testing.incarnation import Incarnation, Registration
from sustain.testing.tree import fetch_tree

if TYPE_CHECKING:
    from sustain.testing.crash import CrashReport

GROUP = "test"


def _ms(delta: timedelta | float) -> int:
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    return round(seconds * 1000)


class SustainEnv:
    """A ``Sustain`` on virtual time (see the module docstring)."""

    def __init__(self, *, auto_skip: bool = True, start_ms: int | None = None) -> None:
        self.auto_skip = auto_skip
        self.clock = VirtualClock(start_ms)
        self.store = MemoryStore()
        self.registrations: list[Registration] = []
        self._ids = itertools.count(1)
        network = LocalNetwork(":memory:", clock=self.clock, store=self.store)
        self._now = Incarnation(network, self.clock, self.registrations, GROUP)
        self.call_options: dict[str, Any] = {}
        self._root = self  # an options view starts and stops the environment it views
        self._started = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> SustainEnv:
        root = self._root
        if not root._started:
            root._started = True
            root._now.start(auto_skip=root.auto_skip)
        return self

    def stop(self) -> None:
        root = self._root
        if root._started:
            root._started = False
            root._now.stop()

    def __enter__(self) -> SustainEnv:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def sustain(self) -> Sustain:
        """The environment's ``Sustain`` (embedded, on the virtual clock)."""
        if self.call_options:
            return self._now.sustain.options(**self.call_options)
        return self._now.sustain

    def options(self, **options: Any) -> SustainEnv:
        """A view of this environment whose calls use ``Sustain.options(**options)``, e.g.
        ``env.options(timeout=timedelta(days=31)).run(fn)`` for a month-long workflow (a
        top-level call's promise lives one day by default, as in production)."""
        view = object.__new__(SustainEnv)
        view.__dict__.update(self.__dict__)
        view.call_options = {**self.call_options, **options}
        return view

    # -- functions and calls ----------------------------------------------------------------
    def register(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """``Sustain.register(fn, name=, version=, retry=)``, also as a decorator; remembered
        for the fresh processes of ``crash_test``."""
        if fn is None:
            return lambda f: self.register(f, **options)
        self._now.sustain.register(fn, **options)
        self.registrations.append(Registration(fn, options))
        return fn

    def _known(self, fn: Callable[..., Any] | str) -> None:
        if not isinstance(fn, str) and self._now.sustain._core.registry.find(fn) is None:
            self.register(fn)

    def next_id(self, fn: Callable[..., Any] | str) -> str:
        name = fn if isinstance(fn, str) else getattr(fn, "__name__", "call")
        return f"{name}-{next(self._ids)}"

    def run(self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Handle:
        """Run ``fn`` durably under a new id (registered on first use); ``.result()`` waits."""
        self._known(fn)
        self.start()
        id = self.next_id(fn)
        return self._now.make_call(lambda: self.sustain.run(id, fn, *args, **kwargs))

    def rpc(self, fn: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> Handle:
        """Invoke ``fn`` (registered, or by name) through the store, under a new id."""
        self._known(fn)
        self.start()
        id = self.next_id(fn)
        return self._now.make_call(lambda: self.sustain.rpc(id, fn, *args, **kwargs))

    def resolve(self, promise_id: str, value: Any = None) -> dict[str, Any]:
        """Resolve a promise (a human-in-the-loop step: ``ctx.promise()``) with ``value``."""
        self.start()
        record: dict[str, Any] = self.sustain.promises.resolve(promise_id, value)
        return record

    def reject(self, promise_id: str, error: BaseException | str = "rejected") -> dict[str, Any]:
        self.start()
        record: dict[str, Any] = self.sustain.promises.reject(promise_id, error)
        return record

    def tree(self, id: str) -> callgraph.CallNode:
        """The call graph of execution ``id`` (what ``sustain tree`` draws): its node's
        ``children``, ``kind`` (run, rpc, sleep, promise...), ``func`` and ``promise``."""
        self.start()
        return self._now.call(fetch_tree(self._now.network, id))

    # -- time -------------------------------------------------------------------------------
    def now(self) -> int:
        """The virtual time, in epoch milliseconds."""
        return self.clock.now()

    def advance(self, delta: timedelta | float) -> None:
        """Let ``delta`` (a timedelta, or seconds) of virtual time pass: every timer,
        timeout, retry and schedule due by then fires, in order, and what it wakes runs
        until it blocks again, before this returns."""
        self.start()
        self._now.call(self._now.driver.advance(_ms(delta)))

    def settle(self) -> None:
        """Wait until every execution is blocked (on time, or on a promise) or done."""
        self.start()
        self._now.call(self._now.driver.settle())

    # -- crash tests and replays ------------------------------------------------------------
    def crash_test(
        self,
        fn: Callable[..., Any] | str,
        *args: Any,
        before_each: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> CrashReport:
        """Crash ``fn(*args, **kwargs)`` before and after each of its checkpoints, and
        recover it (sustain.testing.crash): the ``CrashReport``, or ``CrashTestFailure``
        when a crash changes the outcome.  ``before_each`` resets your fakes before each
        run."""
        from sustain.testing.crash import crash_test  # noqa: PLC0415 - only when used

        self._known(fn)
        return crash_test(self, fn, *args, before_each=before_each, **kwargs)

    def replay(self, fn: Callable[..., Any], history: Any) -> Any:
        """Re-run ``fn`` (the new code) against a recorded execution (``sustain export``):
        ``sustain.testing.replay.replay``, which raises ``NondeterminismError`` at the first
        step that diverges.  A function registered here replays as this environment's app
        (its dependencies, its other functions); another one (new code under the recorded
        name) on its own."""
        try:
            module = importlib.import_module("sustain.testing.replay")
        except ModuleNotFoundError as exc:
            if exc.name != "sustain.testing.replay":
                raise
            raise NotImplementedError(
                "env.replay needs sustain.testing.replay (sustain export and replay), "
                "which this version of Sustain does not include"
            ) from None
        app = self._now.sustain
        return module.replay(fn, history, sustain=app if app._core.registry.find(fn) else None)
