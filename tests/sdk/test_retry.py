"""Retry policies: leaves retry by their policy, workflows do not, timeouts bound retries."""

from __future__ import annotations

from typing import Any

import pytest

from sustain import Constant, Context, Exponential, Linear, Never
from sustain.sdk.registry import Registry
from tests.sdk.conftest import Make, unique

FAST = Exponential(delay=0.01)


def test_flaky_leaf_succeeds_on_attempt_three(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []

    @sustain.register(retry=FAST)
    def flaky(ctx: Context) -> str:
        attempts.append(ctx.info.attempt)
        if len(attempts) < 3:
            raise ConnectionError("flaky")
        return "ok"

    @sustain.register
    async def wf(ctx: Context) -> Any:
        return await ctx.run(flaky)

    assert sustain.run(unique("flaky"), wf).result(timeout=30) == "ok"
    assert attempts == [1, 2, 3]
    attempts.clear()
    assert sustain.run(unique("flaky-root"), flaky).result(timeout=30) == "ok"  # a root leaf
    assert attempts == [1, 2, 3]


def test_non_retryable_error_fails_at_once(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []

    @sustain.register(retry=Exponential(delay=0.01, non_retryable=(ValueError,)))
    def strict(ctx: Context) -> None:
        attempts.append(1)
        raise ValueError("bad order")

    with pytest.raises(ValueError) as failure:
        sustain.run(unique("strict"), strict).result(timeout=30)
    assert str(failure.value) == "bad order"
    assert attempts == [1]


def test_workflow_is_not_retried(make: Make) -> None:
    sustain = make()
    attempts: list[str] = []

    @sustain.register
    def wf(ctx: Context) -> Any:
        attempts.append("generator")
        yield ctx.run(lambda ctx: 1)
        raise RuntimeError("workflow failed")

    @sustain.register
    async def awf(ctx: Context) -> Any:
        attempts.append("coroutine")
        await ctx.run(lambda ctx: 1)
        raise RuntimeError("async workflow failed")

    with pytest.raises(RuntimeError, match="workflow failed"):
        sustain.run(unique("wf"), wf).result(timeout=30)
    with pytest.raises(RuntimeError, match="async workflow failed"):
        sustain.run(unique("awf"), awf).result(timeout=30)
    assert attempts == ["generator", "coroutine"]


def test_async_leaf_retries_by_default(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []

    async def shaky(ctx: Context) -> str:
        attempts.append(ctx.info.attempt)
        if len(attempts) < 2:
            raise ConnectionError("once")
        return "ok"

    @sustain.register
    async def wf(ctx: Context) -> Any:
        return await ctx.run(shaky)  # default leaf policy: Exponential, first pause 1 s

    assert sustain.run(unique("aleaf"), wf).result(timeout=30) == "ok"
    assert attempts == [1, 2]


def test_a_retry_never_outlives_the_promise_timeout(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []

    @sustain.register(retry=Constant(3600, max_retries=None))
    def slow(ctx: Context) -> None:
        attempts.append(1)
        raise RuntimeError("down")

    with pytest.raises(RuntimeError, match="down"):
        sustain.options(timeout=60).run(unique("bounded"), slow).result(timeout=30)
    assert attempts == [1]


def test_policies_and_defaults() -> None:
    assert [Exponential().pause(n) for n in (1, 2, 3, 6, 7, 9, 10)] == [1, 2, 4, 32, 60, 60, None]
    assert [Linear(delay=2).pause(n) for n in (1, 2, 3, 4)] == [2, 4, 6, None]
    assert Constant(delay=5, max_retries=1).pause(2) is None
    assert Never().pause(1) is None
    registry = Registry()

    def leaf(ctx: Context) -> None: ...

    def flow(ctx: Context) -> Any:
        yield ctx.run(leaf)

    assert registry.add(leaf).retry == Exponential(delay=1, factor=2, max_delay=60, max_retries=9)
    assert registry.add(flow).retry == Never()
