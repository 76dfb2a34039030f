"""The same id twice gives the stored execution; concurrent callers share one execution."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sustain import Context, Sustain
from tests.sdk.conftest import Make, unique
from tests.sdk.test_context import wait_pending


def test_same_id_returns_stored_result_without_running_again(make: Make) -> None:
    sustain = make()
    runs: list[int] = []

    def effect(ctx: Context, n: int) -> int:
        runs.append(n)
        return n * 2

    @sustain.register
    def wf(ctx: Context, n: int) -> Any:
        return (yield ctx.run(effect, n))

    id = unique("idem")
    assert sustain.run(id, wf, 21).result(timeout=30) == 42
    assert sustain.run(id, wf, 21).result(timeout=30) == 42
    assert sustain.run(id, wf, 99).result(timeout=30) == 42  # the id decides, not the args
    assert runs == [21]


def test_same_id_while_pending_attaches_to_the_running_execution(make: Make) -> None:
    sustain = make()
    runs: list[str] = []

    def effect(ctx: Context) -> None:
        runs.append("effect")

    @sustain.register
    async def wf(ctx: Context) -> Any:
        await ctx.run(effect)
        return await ctx.promise()

    id = unique("pend")
    first = sustain.run(id, wf)
    wait_pending(sustain, f"{id}:2")
    second = sustain.run(id, wf)
    assert not second.done()
    sustain.promises.resolve(f"{id}:2", "done")
    assert first.result(timeout=30) == second.result(timeout=30) == "done"
    assert runs == ["effect"]


def test_concurrent_callers_share_one_execution(make: Make) -> None:
    sustain = make()
    lock = threading.Lock()
    runs: list[int] = []

    def effect(ctx: Context) -> int:
        with lock:
            runs.append(1)
        return len(runs)

    sustain.register(effect)
    id = unique("conc")
    results: list[Any] = []

    def call() -> None:
        results.append(sustain.run(id, effect).result(timeout=30))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [1] * 8
    assert runs == [1]


def test_restart_on_the_same_file_returns_the_stored_result(tmp_path: Path) -> None:
    db = str(tmp_path / "restart.db")
    runs: list[int] = []

    def effect(ctx: Context, n: int) -> int:
        runs.append(n)
        return n + 1

    id = unique("restart")
    with Sustain(store=db) as first:
        first.register(effect)
        assert first.run(id, effect, 1).result(timeout=30) == 2
    with Sustain(store=db) as second:
        second.register(effect)
        assert second.run(id, effect, 1).result(timeout=30) == 2
    assert runs == [1]
