"""A suspended workflow holds no memory in the worker (the SDK issue's goal).

Between passes nothing of an execution lives in the worker: its pass, its contexts, the
user's generator or coroutine and the worker's bookkeeping are all gone once the task is
suspended, and come back only by replay when a callback resumes it.  The test suspends many
workflows of both styles in a remote worker (the store is in the server process, so every
object counted here is the worker's), counts the SDK's and the user's live objects, then
resumes them all and checks the results.
"""

from __future__ import annotations

import gc
import time
from types import CoroutineType, GeneratorType
from typing import Any

from sustain import Context, Sustain
from sustain.sdk.context import Context as ContextType
from sustain.sdk.replay import ReplayPass
from tests.sdk.conftest import unique
from tests.servers import ServerProcess

N = 100


def step(ctx: Context, n: int) -> int:
    return n * 2


def wait_suspended(server: ServerProcess, ids: list[str]) -> None:
    deadline = time.monotonic() + 60
    waiting = set(ids)
    while waiting:
        assert time.monotonic() < deadline, f"{len(waiting)} tasks never suspended"
        for id in sorted(waiting):
            answer = server.rpc("task.get", {"id": id})  # 404 until begin_run's create lands
            if answer.status == 200 and answer.data["task"]["state"] == "suspended":
                waiting.discard(id)
        time.sleep(0.05)


def live(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


def test_suspended_workflows_leave_nothing_in_the_worker(sdk_server: ServerProcess) -> None:
    sustain = Sustain(url=sdk_server.url, group=unique("mem"))

    @sustain.register
    def gen_wf(ctx: Context, n: int) -> Any:
        doubled = yield ctx.run(step, n)
        approval = yield ctx.promise()
        return [doubled, approval]

    @sustain.register
    async def async_wf(ctx: Context, n: int) -> Any:
        doubled = await ctx.run(step, n)
        approval = await ctx.promise()
        return [doubled, approval]

    try:
        baseline = live(ReplayPass), live(ContextType)
        ids = [unique("mem") for _ in range(N)]
        handles = [
            sustain.begin_run(id, gen_wf if i % 2 else async_wf, i) for i, id in enumerate(ids)
        ]
        wait_suspended(sdk_server, ids)
        core = sustain._core
        deadline = time.monotonic() + 30  # the last suspend's answer may still be on its way
        while core.worker.held and time.monotonic() < deadline:
            time.sleep(0.02)
        assert core.worker.held == {}
        assert (live(ReplayPass), live(ContextType)) == baseline
        frames = [
            o for o in gc.get_objects()
            if (isinstance(o, GeneratorType) and o.gi_code.co_name == "gen_wf")
            or (isinstance(o, CoroutineType) and o.cr_code.co_name == "async_wf")
        ]  # fmt: skip
        assert frames == []
        for id in ids:
            sustain.promises.resolve(f"{id}:2", "ok")
        assert [h.result(timeout=60) for h in handles] == [[i * 2, "ok"] for i in range(N)]
    finally:
        sustain.stop()
