"""The durable functions of the SDK workloads W1-W4, shared by both modes.

Embedded mode registers them on a ``Sustain(store=<file>)`` in the benchmark process;
server mode registers them on the worker process's ``Sustain`` (``sdk_worker.py``) and the
caller invokes them by name.  Every function returns a value the caller checks, so a fast
wrong answer fails the run.  Generator style (``x = yield ctx.run(...)``), the SDK's main
style.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sustain import Context, Sustain

Flow = Generator[Any, Any, Any]

GROUP = "bench"  # the worker group of server mode


def step(ctx: Context, x: int) -> int:
    """A leaf: one durable step (a checkpointed child promise)."""
    return x + 1


def chain(ctx: Context, n: int) -> Flow:
    """W1: ``n`` sequential steps; returns ``n``."""
    x = 0
    for _ in range(n):
        x = yield ctx.run(step, x)
    return x


def three(ctx: Context, x: int) -> Flow:
    """W2: three sequential steps; returns ``x + 3``."""
    for _ in range(3):
        x = yield ctx.run(step, x)
    return x


def double(ctx: Context, i: int) -> int:
    return 2 * i


def fanout(ctx: Context, n: int) -> Flow:
    """W3: start ``n`` children at once, then sum them; returns ``n * (n - 1)``."""
    futures = []
    for i in range(n):
        futures.append((yield ctx.begin_run(double, i)))
    total = 0
    for future in futures:
        total += yield future
    return total


def nap(ctx: Context, seconds: float) -> Flow:
    """W4: a durable sleep (child 1, a timer promise), then the wall clock recorded in a
    leaf step (child 2) the first time the workflow runs past the sleep."""
    yield ctx.sleep(seconds)
    woke = yield ctx.now()
    return woke


def ping(ctx: Context) -> str:
    """The warm-up call of every run (connections, lazy imports)."""
    return "pong"


FUNCTIONS = (step, chain, three, double, fanout, nap, ping)


def register(sustain: Sustain) -> Sustain:
    for fn in FUNCTIONS:
        sustain.register(fn)
    return sustain
