"""Issue 16, item 6: mistakes explained.

Each mistake gets a message naming the function and saying what to write instead: at
register time when the definition shows it, else at the first call.  A caller waiting on a
function no worker of the target group has learns it (``FunctionNotFoundError`` naming the
group and the function, over a real server and a real ``sustain worker`` process), and a
timed-out ``result()`` says what the execution waits on.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sustain import (
    Context,
    DefinitionError,
    ExecutionTimeoutError,
    Exponential,
    FunctionNotFoundError,
    Sustain,
)
from tests.sdk.conftest import Make, unique
from tests.sdk.worker_process import serving
from tests.servers import ServerProcess


def step(ctx: Context, n: int) -> int:
    return n + 1


# -- at register time ----------------------------------------------------------------------
def test_register_refuses_definitions_that_cannot_work() -> None:
    sustain = Sustain(store=":memory:")

    def no_params() -> int:
        return 1

    async def both(ctx: Context) -> AsyncGenerator[int, None]:
        yield await ctx.run(step, 1)

    def plain(ctx: Context, n: int) -> Any:
        return ctx.run(step, n)  # a plain def: runs in a thread, cannot make durable calls

    with pytest.raises(DefinitionError, match=r"no_params: takes no parameter for the Context"):
        sustain.register(no_params)
    with pytest.raises(DefinitionError, match=r"both: an `async def` that yields"):
        sustain.register(both)
    with pytest.raises(DefinitionError) as plain_def:
        sustain.register(plain)
    assert plain_def.value.function == "plain"
    assert "plain `def` that calls `ctx.run(...)`" in str(plain_def.value)
    assert "`x = yield ctx.run(...)`" in str(plain_def.value)
    assert "`x = await ctx.run(...)`" in str(plain_def.value)
    assert sustain.functions() == {}

    def leaf(ctx: Context, cmd: list[str]) -> int:  # `run` on another object is no mistake
        return subprocess.run(cmd, check=False).returncode

    sustain.register(leaf)
    assert sustain.functions() == {"leaf": [1]}


# -- at the first call ---------------------------------------------------------------------
def test_mistakes_only_a_call_shows(make: Make) -> None:
    sustain = make()

    @sustain.register
    def forgot_yield(ctx: Context):
        if False:
            yield  # a generator whose result is the step's future itself
        return ctx.run(step, 1)

    @sustain.register
    async def forgot_await(ctx: Context) -> Any:
        return ctx.run(step, 1)

    @sustain.register
    async def used_as_value(ctx: Context) -> Any:
        return ctx.run(step, 1) + 1

    @sustain.register
    async def passed_as_argument(ctx: Context) -> Any:
        return await ctx.run(step, ctx.run(step, 1))

    def sneaky(ctx: Context) -> Any:  # hides ctx.run behind options(): not seen at register
        return ctx.options(timeout=5).run(step, 1)

    @sustain.register
    async def calls_sneaky(ctx: Context) -> Any:
        return await ctx.options(retry=Exponential(delay=0.01)).run(sneaky)

    def failure(fn: Any) -> DefinitionError:
        with pytest.raises(DefinitionError) as caught:  # the SDK's own class, rebuilt
            sustain.run(unique(fn.__name__), fn).result(timeout=60)
        return caught.value

    for fn in (forgot_yield, forgot_await):
        error = failure(fn)
        assert error.function == fn.__name__, error
        assert str(error).startswith(f"{fn.__name__}: the value it returned holds the durable")
        assert "a `yield` (in a generator) or an `await` (in an `async def`)" in str(error)
    error = failure(used_as_value)
    assert "used_as_value: unsupported operand" in str(error)
    assert "its DurableFuture was used as if it were the value" in error.problem
    error = failure(passed_as_argument)
    assert error.function == "step"
    assert str(error).startswith("step: an argument of this call, from '")
    assert "holds the durable call" in str(error)
    error = failure(calls_sneaky)
    assert error.function == "sneaky"
    assert str(error).startswith("sneaky: made a durable call (ctx.run of 'step')")
    assert "where a plain `def` runs" in str(error)


# -- waiting on an execution that cannot progress -----------------------------------------
def test_a_timeout_says_what_the_execution_waits_on(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []
    recovered = threading.Event()

    def flaky(ctx: Context) -> str:
        attempts.append(ctx.info.attempt)
        if not recovered.is_set():
            raise ConnectionError("the payment service is down")
        return "paid"

    @sustain.register
    def waits(ctx: Context):
        yield ctx.promise()

    @sustain.register
    def sleeps(ctx: Context):
        yield ctx.sleep(3600)

    @sustain.register
    def retries(ctx: Context):
        return (yield ctx.options(retry=Exponential(delay=0.05, max_retries=None)).run(flaky))

    for fn in (waits, sleeps):
        id = unique(fn.__name__)
        with pytest.raises(ExecutionTimeoutError) as waited:
            sustain.run(id, fn).result(timeout=0.5)
        text = str(waited.value)
        assert waited.value.id == id and isinstance(waited.value, TimeoutError)
        assert f"{id!r} did not settle within 0.5s (it goes on)" in text
        if fn is waits:
            assert f"promise '{id}:1', settled by someone else" in text
            assert "is suspended until what it awaits settles" in text
        else:
            assert f"sleep '{id}:1' until 20" in text and " UTC" in text

    id = unique("retries")
    handle = sustain.run(id, retries)
    deadline = time.monotonic() + 60  # a bound on the wait, not an assertion on speed
    while len(attempts) < 2:  # the first failure is recorded before the second attempt
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with pytest.raises(ExecutionTimeoutError) as waited:
        handle.result(timeout=0.1)
    text = str(waited.value)
    assert f"step '{id}:1' (flaky), retrying: attempt " in text
    assert "raised ConnectionError('the payment service is down')" in text
    recovered.set()
    assert handle.result(timeout=60) == "paid"  # the timeout left the handle usable


@pytest.fixture
def group_worker(sdk_server: ServerProcess, tmp_path: Path) -> Iterator[str]:
    """A real ``sustain worker`` process serving a group of its own (crash_app's functions:
    ``steps``, not ``nope``); stopped at the end."""
    env = {"CRASH_LOG": str(tmp_path / "steps.log")}
    with serving(sdk_server, tmp_path, "tests.sdk.crash_app:sustain", env) as group:
        yield group


def test_a_function_no_worker_of_the_group_has(
    sdk_server: ServerProcess, group_worker: str
) -> None:
    caller = Sustain(url=sdk_server.url, group=unique("caller"))
    try:
        id = unique("nope")
        handle = caller.options(target=group_worker).rpc(id, "nope", 1)
        with pytest.raises(FunctionNotFoundError) as missing:
            handle.result(timeout=120)
        error = missing.value
        assert (error.name, error.group, error.id) == ("nope", group_worker, id)
        assert f"not registered on any worker of group {group_worker!r}" in str(error)
        assert f"the execution {id!r} is paused; register it there and it resumes" in str(error)
        assert caller.promises.get(id)["state"] == "pending"  # paused, not lost
    finally:
        caller.stop()


def test_no_worker_connected_to_the_group(sdk_server: ServerProcess) -> None:
    caller = Sustain(url=sdk_server.url, group=unique("caller"))
    try:
        lonely = unique("nobody")
        id = unique("unclaimed")
        handle = caller.options(target=lonely).rpc(id, "anything")
        with pytest.raises(ExecutionTimeoutError) as waited:
            handle.result(timeout=0.5)
        assert f"no worker of group {lonely!r} is connected" in str(waited.value)
    finally:
        caller.stop()
