"""Patches (sdk/patches.py): ``ctx.patched`` and ``ctx.deprecate_patch`` in the three modes.

An "old" execution is made for real: the old code runs until it waits on a human-in-the-loop
promise, its instance stops, and an instance with the new code (the same SQLite file, or
the same server) resumes it once the promise is resolved.  The process-level version of this
(worker processes, a durable sleep, SIGKILL) is tests/sdk/test_patch_deploy.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sustain import Context, Sustain
from sustain.errors import DefinitionError, NondeterminismError
from sustain.sdk.patches import PATCH
from tests.sdk.conftest import Make, unique

Workflow = Callable[..., Any]


@pytest.fixture(params=["file", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    """Two instances share the history: a SQLite file or a server (not two memory stores)."""
    return str(request.param)


def check_v1(ctx: Context, n: int) -> str:
    return f"v1:{n}"


def check_v2(ctx: Context, n: int) -> str:
    return f"v2:{n}"


def old(ctx: Context, n: int) -> Any:
    checked = yield ctx.run(check_v1, n)
    yield ctx.promise()
    return checked


def patched_gen(ctx: Context, n: int) -> Any:
    if (yield ctx.patched("fraud")):
        checked = yield ctx.run(check_v2, n)
    else:
        checked = yield ctx.run(check_v1, n)
    yield ctx.promise()
    return checked


async def patched_async(ctx: Context, n: int) -> Any:
    if await ctx.patched("fraud"):
        checked = await ctx.run(check_v2, n)
    else:
        checked = await ctx.run(check_v1, n)
    await ctx.promise()
    return checked


def deprecated(ctx: Context, n: int) -> Any:
    ctx.deprecate_patch("fraud")
    checked = yield ctx.run(check_v2, n)
    yield ctx.promise()
    return checked


def unpatched_new(ctx: Context, n: int) -> Any:
    """The new branch alone, the patch call removed without the deprecation step."""
    checked = yield ctx.run(check_v2, n)
    yield ctx.promise()
    return checked


def start(make: Make, code: Workflow, group: str, id: str) -> Sustain:
    """An instance with ``code`` registered as ``order``, the execution ``id`` started on it
    and waiting on its promise (the workflow's call 2, or 3 when a marker took slot 1)."""
    s = make(group=group)
    s.register(code, name="order")
    s.run(id, "order", 7)
    return s


def wait_pending(s: Sustain, id: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if s.promises.get(id)["state"] == "pending":
                return
        except Exception:
            pass
        assert time.monotonic() < deadline, f"{id} never appeared"
        time.sleep(0.02)


def resume(make: Make, code: Workflow, group: str, id: str, promise: str, **options: Any) -> Any:
    s = make(group=group, **options)
    s.register(code, name="order")
    handle = s.get(id)
    s.promises.resolve(promise)
    return s, handle.result(timeout=30)


@pytest.mark.parametrize("new", [patched_gen, patched_async], ids=["generator", "async"])
def test_old_execution_replays_the_old_branch_and_a_new_one_takes_the_new(
    make: Make, new: Workflow
) -> None:
    group, old_id, new_id = unique("g"), unique("old"), unique("new")
    first = start(make, old, group, old_id)
    wait_pending(first, f"{old_id}:2")
    first.stop()

    second, value = resume(make, new, group, old_id, f"{old_id}:2")
    assert value == "v1:7"  # the execution went past the patch point without it
    with pytest.raises(Exception):  # noqa: B017 (no marker was written for it)
        second.promises.get(f"{old_id}:3")

    second.run(new_id, "order", 8)
    wait_pending(second, f"{new_id}:3")  # slot 1 is the marker, 2 the step, 3 the promise
    marker = second.promises.get(f"{new_id}:1")
    assert marker["state"] == "resolved"
    assert marker["tags"][PATCH] == "fraud"
    assert marker["tags"]["resonate:scope"] == "local"
    second.promises.resolve(f"{new_id}:3")
    assert second.get(new_id).result(timeout=30) == "v2:8"


def test_a_replay_of_a_patched_execution_takes_the_new_branch_again(make: Make) -> None:
    group, id = unique("g"), unique("wf")
    first = start(make, patched_gen, group, id)
    wait_pending(first, f"{id}:3")
    first.stop()
    _, value = resume(make, patched_gen, group, id, f"{id}:3")
    assert value == "v2:7"


def test_deprecate_patch_replays_marked_executions_and_marks_no_new_one(make: Make) -> None:
    group, marked, fresh = unique("g"), unique("marked"), unique("fresh")
    first = start(make, patched_gen, group, marked)
    wait_pending(first, f"{marked}:3")
    first.stop()

    second, value = resume(make, deprecated, group, marked, f"{marked}:3")
    assert value == "v2:7"  # the marker's slot is consumed: the ids match the history

    second.run(fresh, "order", 9)
    wait_pending(second, f"{fresh}:2")  # no marker: the step is call 1, the promise call 2
    assert "sustain:patch" not in second.promises.get(f"{fresh}:1")["tags"]
    second.promises.resolve(f"{fresh}:2")
    assert second.get(fresh).result(timeout=30) == "v2:9"


def test_dropping_a_patch_without_deprecating_it_is_a_nondeterminism_naming_it(
    make: Make,
) -> None:
    group, id = unique("g"), unique("wf")
    first = start(make, patched_gen, group, id)
    wait_pending(first, f"{id}:3")
    first.stop()
    with pytest.raises(NondeterminismError) as raised:  # its class, rebuilt in the caller
        # "fail" to see the error raised; by default the execution pauses until fixed code
        resume(make, unpatched_new, group, id, f"{id}:3", on_code_mismatch="fail")
    assert raised.value.recorded == "sustain.patch:fraud"


def test_patched_tested_without_yield_or_await_is_a_definition_error(make: Make) -> None:
    def forgot(ctx: Context) -> Any:
        if ctx.patched("p"):  # the future, not the answer
            yield ctx.run(check_v2, 1)
        return "done"

    s = make()
    s.register(forgot)
    with pytest.raises(DefinitionError, match=r"if \(yield ctx\.patched\('p'\)\)"):
        s.run(unique("wf"), forgot).result(timeout=30)


def test_a_call_before_the_answer_of_patched_is_a_definition_error(make: Make) -> None:
    async def eager(ctx: Context) -> Any:
        answer = ctx.patched("p")
        await ctx.run(check_v2, 1)  # its id depends on the answer
        return await answer

    s = make()
    s.register(eager)
    with pytest.raises(DefinitionError, match=r"before the answer of ctx\.patched"):
        s.run(unique("wf"), eager).result(timeout=30)
