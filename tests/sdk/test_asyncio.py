"""Issue 16, item 5: asyncio done right.

``await handle`` works; the blocking ``handle.result()`` and ``stop()`` raise
``AsyncUsageError`` on a running loop (never a coroutine that a sync caller drops);
``await sustain.astop()`` and ``async with Sustain(...)``; a timed-out wait leaves the handle
usable.  A Jupyter notebook is a running loop in the main thread: the same calls run inside
``asyncio.run(...)`` in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sustain import AsyncUsageError, Context, ExecutionTimeoutError
from tests.sdk.conftest import Make, unique

ROOT = Path(__file__).resolve().parents[2]


def triple(ctx: Context, n: int) -> int:
    return n * 3


async def test_await_handle_and_async_with(make: Make) -> None:
    async with make() as sustain:

        @sustain.register
        async def wf(ctx: Context, n: int) -> int:
            return int(await ctx.run(triple, n))

        handle = sustain.run(unique("await"), wf, 4)
        assert await handle == 12
        assert await handle.aresult(timeout=60) == 12  # awaited again: the same value
    assert not sustain._core.loop().loop.is_running()  # async with stopped it


async def test_blocking_calls_on_a_running_loop_say_to_await(make: Make) -> None:
    sustain = make()

    @sustain.register
    def wf(ctx: Context, n: int):
        return (yield ctx.run(triple, n))

    handle = sustain.run(unique("blocking"), wf, 2)
    with pytest.raises(AsyncUsageError, match=r"handle.result\(\) blocks.*`await handle`"):
        handle.result()
    with pytest.raises(AsyncUsageError, match=r"`await sustain.astop\(\)`"):
        sustain.stop()
    assert await handle == 6  # the refused call changed nothing
    await sustain.astop()
    await sustain.astop()  # idempotent, as stop() is


async def test_a_timed_out_await_leaves_the_handle_usable(make: Make) -> None:
    sustain = make()

    @sustain.register
    def approve(ctx: Context):
        return (yield ctx.promise())

    id = unique("approve")
    handle = sustain.run(id, approve)
    with pytest.raises(ExecutionTimeoutError) as waited:
        await handle.aresult(timeout=0.2)
    assert isinstance(waited.value, TimeoutError)
    assert f"promise '{id}:1'" in str(waited.value)
    await sustain.promises.resolve(f"{id}:1", "yes")
    assert await handle == "yes"
    await sustain.astop()


NOTEBOOK = textwrap.dedent(
    """
    import asyncio

    from sustain import AsyncUsageError, Context, Sustain


    def triple(ctx: Context, n: int) -> int:
        return n * 3


    async def cell() -> None:  # what a notebook does: every cell runs on one running loop
        sustain = Sustain(store=":memory:")

        @sustain.register
        async def wf(ctx: Context, n: int) -> int:
            return await ctx.run(triple, n)

        handle = sustain.run("nb-1", wf, 5)
        try:
            handle.result()
        except AsyncUsageError as exc:
            print("refused:", exc)
        print("value:", await handle)
        async with Sustain(store=":memory:") as other:
            other.register(wf)
            print("other:", await other.run("nb-2", wf, 1))
        await sustain.astop()
        print("stopped")


    asyncio.run(cell())
    """
)


def test_a_notebook_style_running_loop_in_the_main_thread(tmp_path: Path) -> None:
    script = tmp_path / "notebook.py"
    script.write_text(NOTEBOOK)
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused: handle.result() blocks") and "await handle" in lines[0]
    assert lines[1:] == ["value: 15", "other: 3", "stopped"]
    assert "RuntimeWarning" not in done.stderr
