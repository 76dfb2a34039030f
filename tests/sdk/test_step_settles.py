"""Local steps' settles and sync leaves, end to end in every mode.

A fan-out's settles leave together (replay.py ``_chain_settle``): the workflow's result is
only reported once every child's settle is acknowledged, so every child is settled then,
with its own outcome.  A sync leaf that blocks holds one thread of the leaf pool, never the
event loop nor the other workflows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Generator
from typing import Any

from sustain import Context
from sustain.errors import ServerError
from sustain.sdk import ids
from sustain.sdk.retry import Never
from tests.sdk.conftest import Make, unique

DEADLINE = 60.0


def square(ctx: Context, i: int) -> int:
    if i % 7 == 3:
        raise ValueError(f"no {i}")
    return i * i


def fan(ctx: Context, n: int) -> Generator[Any, Any, list[Any]]:
    futures = []
    for i in range(n):
        futures.append((yield ctx.begin_run(square, i)))
    results: list[Any] = []
    for future in futures:
        try:
            results.append((yield future))
        except ValueError as exc:
            results.append(str(exc))
    last = yield ctx.run(square, n)  # a step after the fan-out: it waited for all settles
    return [*results, last]


def test_a_fan_out_settles_every_child(make: Make) -> None:
    sustain = make()
    sustain.register(square, retry=Never())  # a failed child is rejected at once
    sustain.register(fan)
    n = 40
    id = unique("fan")
    got = sustain.run(id, fan, n).result(timeout=DEADLINE)
    want = [f"no {i}" if i % 7 == 3 else i * i for i in range(n)] + [n * n]
    assert got == want
    for i in range(n + 1):
        record = sustain.promises.get(ids.child(id, i + 1))
        assert record["state"] == ("rejected" if i % 7 == 3 else "resolved"), i


gate = threading.Event()


def blocks(ctx: Context) -> str:
    return "released" if gate.wait(DEADLINE) else "timed out"


def opens(ctx: Context) -> str:
    gate.set()
    return "opened"


def waiter(ctx: Context) -> Generator[Any, Any, str]:
    got: str = yield ctx.run(blocks)
    return got


def opener(ctx: Context) -> Generator[Any, Any, str]:
    got: str = yield ctx.run(opens)
    return got


def test_a_blocking_leaf_does_not_hold_up_other_workflows(make: Make) -> None:
    gate.clear()
    sustain = make()
    for fn in (blocks, opens, waiter, opener):
        sustain.register(fn)
    blocked = sustain.run(unique("wait"), waiter)
    # the opener's leaf runs while the waiter's leaf is blocked in its own thread
    assert sustain.run(unique("open"), opener).result(timeout=DEADLINE) == "opened"
    assert blocked.result(timeout=DEADLINE) == "released"


lingers = threading.Event()


def add_one(ctx: Context, x: int) -> int:
    return x + 1


async def slow_between(ctx: Context, x: int) -> int:
    """A step, then slow work that is not durable (no request follows the step for a while)."""
    y: int = await ctx.run(add_one, x)
    await asyncio.to_thread(lingers.wait, DEADLINE)
    return y


def test_a_step_is_saved_while_the_workflow_does_other_work(make: Make) -> None:
    """A finished step's settle waits for the pass's next request only briefly (replay.py
    ``HOLD_S``): a workflow busy with something slow and non-durable after a step still
    has that step saved at once."""
    lingers.clear()
    sustain = make()
    sustain.register(add_one)
    sustain.register(slow_between)
    id = unique("hold")
    handle = sustain.run(id, slow_between, 1)
    step = ids.child(id, 1)
    deadline = time.monotonic() + DEADLINE

    def state(id: str) -> str:
        try:
            return str(sustain.promises.get(id)["state"])
        except ServerError:  # 404 until the step's create
            return "missing"

    try:
        while state(step) != "resolved":
            assert time.monotonic() < deadline, state(step)
            time.sleep(0.01)
        assert state(id) == "pending"  # still in its slow part
    finally:
        lingers.set()
    assert handle.result(timeout=DEADLINE) == 2
