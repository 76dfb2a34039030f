"""Every Context operation, in both styles (generators and coroutines), in every mode."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from sustain import Context
from sustain.sdk import ids
from tests.sdk.conftest import Make, unique

STYLES = ["generator", "coroutine"]


def wait_pending(sustain: Any, id: str) -> None:
    """Wait until the promise ``id`` exists (the workflow reached it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = sustain.promises.search(tags={"resonate:origin": ids.origin_of(id)})
        if any(p["id"] == id for p in found["promises"]):
            return
        time.sleep(0.02)
    raise AssertionError(f"{id} never created")


def triple(ctx: Context, x: int) -> int:
    return x * 3


async def atriple(ctx: Context, x: int) -> int:
    await asyncio.sleep(0)
    return x * 3


def add(ctx: Context, a: int, b: int = 0) -> int:
    return a + b


@pytest.mark.parametrize("style", STYLES)
def test_run_and_begin_run(make: Make, style: str) -> None:
    sustain = make()
    sustain.register(add)
    if style == "generator":

        def wf(ctx: Context, n: int) -> Any:
            a = yield ctx.run(triple, n)
            p = yield ctx.begin_run(atriple, n + 1)
            q = yield ctx.begin_run(add, n, b=10)
            c = yield ctx.run(add, 1, 2)
            return [a, (yield p), (yield q), c]
    else:

        async def wf(ctx: Context, n: int) -> Any:  # type: ignore[misc]
            a = await ctx.run(triple, n)
            p = ctx.begin_run(atriple, n + 1)
            q = ctx.begin_run(add, n, b=10)
            c = await ctx.run(add, 1, 2)
            return [a, await p, await q, c]

    sustain.register(wf)
    assert sustain.run(unique("wf"), wf, 2).result(timeout=30) == [6, 9, 12, 3]


@pytest.mark.parametrize("style", STYLES)
def test_rpc_and_begin_rpc(make: Make, style: str) -> None:
    sustain = make()
    sustain.register(add)
    if style == "generator":

        def wf(ctx: Context, n: int) -> Any:
            a = yield ctx.rpc(add, n, 1)
            p = yield ctx.begin_rpc("add", n, b=2)
            return [a, (yield p)]
    else:

        async def wf(ctx: Context, n: int) -> Any:  # type: ignore[misc]
            a = await ctx.rpc(add, n, 1)
            p = ctx.begin_rpc("add", n, b=2)
            return [a, await p]

    sustain.register(wf)
    id = unique("rpc")
    assert sustain.run(id, wf, 5).result(timeout=30) == [6, 7]
    record = sustain.promises.get(f"{id}:1")
    assert record["tags"]["resonate:target"] == f"poll://any@{sustain.group}"
    assert record["tags"]["resonate:scope"] == "global"


@pytest.mark.parametrize("style", STYLES)
def test_sleep_seconds_and_timedelta(make: Make, style: str) -> None:
    sustain = make()
    if style == "generator":

        def wf(ctx: Context) -> Any:
            yield ctx.sleep(0.05)
            yield ctx.sleep(timedelta(milliseconds=50))
            return "woke"
    else:

        async def wf(ctx: Context) -> Any:  # type: ignore[misc]
            await ctx.sleep(0.05)
            await ctx.sleep(timedelta(milliseconds=50))
            return "woke"

    sustain.register(wf)
    id = unique("sleep")
    assert sustain.run(id, wf).result(timeout=30) == "woke"
    timer = sustain.promises.get(f"{id}:2")
    assert timer["tags"]["resonate:timer"] == "true"
    assert timer["state"] == "resolved"


@pytest.mark.parametrize("style", STYLES)
def test_promise_human_in_the_loop(make: Make, style: str) -> None:
    sustain = make()
    seen: list[str] = []

    def notify(ctx: Context, promise_id: str) -> None:
        seen.append(promise_id)

    if style == "generator":

        def wf(ctx: Context) -> Any:
            p = ctx.promise()
            yield ctx.run(notify, p.id)
            answer = yield p
            return f"approved:{answer}"
    else:

        async def wf(ctx: Context) -> Any:  # type: ignore[misc]
            p = ctx.promise()
            await ctx.run(notify, p.id)
            return f"approved:{await p}"

    sustain.register(wf)
    id = unique("hitl")
    handle = sustain.run(id, wf)
    wait_pending(sustain, f"{id}:2")
    assert not handle.done()
    sustain.promises.resolve(f"{id}:1", "yes")
    assert handle.result(timeout=30) == "approved:yes"
    assert seen == [f"{id}:1"]  # notify ran once, not again on the replay after resolve


@pytest.mark.parametrize("style", STYLES)
def test_detached(make: Make, style: str) -> None:
    sustain = make()
    sustain.register(add)
    if style == "generator":

        def wf(ctx: Context) -> Any:
            child = yield ctx.detached(add, 20, 22)
            return child
    else:

        async def wf(ctx: Context) -> Any:  # type: ignore[misc]
            return await ctx.detached("add", 20, 22)

    sustain.register(wf)
    id = unique("det")
    child = sustain.run(id, wf).result(timeout=30)
    assert child.startswith(f"{id}:d")
    assert sustain.get(child).result(timeout=30) == 42


@pytest.mark.parametrize("style", STYLES)
def test_options_id_retry_and_target(make: Make, style: str) -> None:
    sustain = make()
    attempts: list[int] = []

    def flaky(ctx: Context) -> int:
        attempts.append(ctx.info.attempt)
        if len(attempts) < 2:
            raise RuntimeError("not yet")
        return len(attempts)

    sustain.register(add)
    from sustain import Constant

    if style == "generator":

        def wf(ctx: Context) -> Any:
            a = yield ctx.options(id=f"{ctx.id}.custom").run(add, 1, 1)
            b = yield ctx.options(retry=Constant(0.01)).run(flaky)
            c = yield ctx.options(target=sustain.group).rpc(add, 2, 2)
            return [a, b, c]
    else:

        async def wf(ctx: Context) -> Any:  # type: ignore[misc]
            a = await ctx.options(id=f"{ctx.id}.custom").run(add, 1, 1)
            b = await ctx.options(retry=Constant(0.01)).run(flaky)
            c = await ctx.options(target=sustain.group).rpc(add, 2, 2)
            return [a, b, c]

    sustain.register(wf)
    id = unique("opts")
    assert sustain.run(id, wf).result(timeout=30) == [2, 2, 4]
    assert attempts == [1, 2]
    assert sustain.promises.get(f"{id}.custom")["state"] == "resolved"


@pytest.mark.parametrize("style", STYLES)
def test_dependencies_info_and_checkpointed_values(make: Make, style: str) -> None:
    sustain = make()
    sustain.set_dependency("db", {"name": "orders"})
    if style == "generator":

        def wf(ctx: Context) -> Any:
            now = yield ctx.now()
            rnd = yield ctx.random()
            uid = yield ctx.uuid()
            answer = yield ctx.promise()
            info = ctx.info
            return [ctx.get_dependency("db")["name"], now, rnd, uid, answer, info.id, info.attempt]
    else:

        async def wf(ctx: Context) -> Any:  # type: ignore[misc]
            now = await ctx.now()
            rnd = await ctx.random()
            uid = await ctx.uuid()
            answer = await ctx.promise()
            info = ctx.info
            return [ctx.get_dependency("db")["name"], now, rnd, uid, answer, info.id, info.attempt]

    sustain.register(wf)
    id = unique("dep")
    handle = sustain.run(id, wf)
    wait_pending(sustain, f"{id}:4")
    recorded = [sustain.promises.get(f"{id}:{n}") for n in (1, 2, 3)]
    sustain.promises.resolve(f"{id}:4", "ok")
    db, now, rnd, uid, answer, info_id, attempt = handle.result(timeout=30)
    assert (db, answer, info_id, attempt) == ("orders", "ok", id, 1)
    assert abs(now - time.time()) < 3600 and 0 <= rnd < 1 and len(uid) == 32
    # the replay after the resolve returned the recorded values, not fresh ones
    from sustain.sdk import codec

    assert [codec.decode(r["value"]) for r in recorded] == [now, rnd, uid]


async def test_async_caller_awaits_result(make: Make) -> None:
    sustain = make()

    async def wf(ctx: Context, n: int) -> int:
        return int(await ctx.run(triple, n))

    sustain.register(wf)
    assert await sustain.run(unique("async"), wf, 4) == 12
    pid = unique("raw")
    created = await sustain.promises.create(pid, timeout=60, value={"q": 1})
    assert created["state"] == "pending"
    resolved = await sustain.promises.resolve(pid, "fine")
    assert resolved["state"] == "resolved"
    await sustain.astop()  # drains and closes from async code too
    assert not sustain._core.loop().loop.is_running()


def test_promise_settled_during_the_pass_replays_at_once(make: Make) -> None:
    """The suspend answers 300 (the awaited promise settled meanwhile): replay, then finish."""
    import threading

    sustain = make()
    gate = threading.Event()

    def hold(ctx: Context) -> None:
        gate.wait(30)

    @sustain.register
    async def wf(ctx: Context) -> Any:
        p = ctx.promise()
        await ctx.run(hold)
        return await p

    id = unique("race")
    handle = sustain.run(id, wf)
    wait_pending(sustain, f"{id}:2")
    sustain.promises.resolve(f"{id}:1", "early")
    gate.set()
    assert handle.result(timeout=30) == "early"
