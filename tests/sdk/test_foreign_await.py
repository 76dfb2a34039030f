"""Awaiting a promise of another origin: the task stays acquired and a listener wakes it.

Callbacks only join promises of one origin (PROTOCOL.md §2.4), so a workflow awaiting an
explicit id such as ``factorial-5`` (its own origin) cannot suspend on it.  The SDK keeps the
task acquired (heartbeats hold the lease) and waits through ``promise.register_listener`` at
the worker's unicast address; these tests check it in the three modes, and that a worker
stopping gracefully hands such a task to the group at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sustain import Context, ServerError, Sustain
from tests.sdk.conftest import Make, unique
from tests.servers import start_server


def wait_pending(sustain: Sustain, id: str, timeout: float = 30) -> None:
    """Until the promise ``id`` exists (pending)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert sustain.promises.get(id)["state"] == "pending"
            return
        except ServerError as exc:
            assert exc.status == 404
        assert time.monotonic() < deadline, f"{id} never created"
        time.sleep(0.05)


def test_a_foreign_promise_resolved_later_by_someone_else_completes_the_workflow(
    make: Make,
) -> None:
    sustain = make()
    foreign = unique("elsewhere")

    @sustain.register
    async def wf(ctx: Context) -> Any:
        value = await ctx.options(id=foreign).promise()
        return f"got {value}"

    handle = sustain.run(unique("xorigin"), wf)
    wait_pending(sustain, foreign)
    time.sleep(0.3)
    assert not handle.done()
    sustain.promises.resolve(foreign, 42)
    assert handle.result(timeout=30) == "got 42"
    # the foreign promise is a lineage of its own, not a child of the awaiting workflow
    assert sustain.promises.get(foreign)["tags"]["resonate:origin"] == foreign


def test_a_foreign_rejection_reaches_the_awaiting_workflow(make: Make) -> None:
    sustain = make()
    foreign = unique("elsewhere")

    @sustain.register
    def wf(ctx: Context) -> Any:
        try:
            yield ctx.options(id=foreign).promise()
        except Exception as exc:
            return f"failed: {exc}"
        return "resolved"

    handle = sustain.run(unique("xorigin"), wf)
    wait_pending(sustain, foreign)
    sustain.promises.reject(foreign, "nope")
    assert handle.result(timeout=30) == "failed: nope"


def test_an_rpc_with_an_explicit_foreign_id_runs_the_callee_once(make: Make) -> None:
    sustain = make()
    runs: list[int] = []
    prefix = unique("fact")

    @sustain.register
    def factorial(ctx: Context, n: int) -> Any:
        runs.append(n)
        if n <= 1:
            return 1
        below = yield ctx.options(id=f"{prefix}{n - 1}").rpc("factorial", n - 1)
        return n * below

    assert sustain.rpc(f"{prefix}5", "factorial", 5).result(timeout=60) == 120
    assert sorted(runs) == [1, 2, 3, 4, 5]
    for n in range(1, 6):
        record = sustain.promises.get(f"{prefix}{n}")
        assert record["state"] == "resolved"
        assert record["tags"]["resonate:origin"] == f"{prefix}{n}"
    # the same ids again: every result comes from the store, nothing runs
    assert sustain.rpc(f"{prefix}6", "factorial", 6).result(timeout=60) == 720
    assert sorted(runs) == [1, 2, 3, 4, 5, 6]


def test_a_stopping_worker_releases_a_waiting_task_to_the_group(tmp_path: Path) -> None:
    # A released task's execute may reach a worker that is itself stopping (it still listens
    # until its network closes); the retry timeout sends it again, so keep that one short.
    server = start_server(tmp_path, "--retry-timeout", "1000")
    group, foreign, id = unique("g"), unique("elsewhere"), unique("xorigin")

    def app(me: str) -> Sustain:
        sustain = Sustain(url=server.url, group=group, ttl=60)

        @sustain.register
        async def wf(ctx: Context) -> Any:
            return f"{await ctx.options(id=foreign).promise()} on {me}"

        return sustain

    first = app("first")
    try:
        first.run(id, "wf")
        wait_pending(first, foreign)
        # waiting on another origin's promise: the task stays acquired, it does not suspend
        assert server.ok("task.get", {"id": id})["task"]["state"] == "acquired"
        started = time.monotonic()
        first.stop()  # must not sit out the 30 s grace, nor leave the task to its 60 s lease
        assert time.monotonic() - started < 10
        assert server.ok("task.get", {"id": id})["task"]["state"] == "pending"
        second = app("second")
        try:
            second.start()
            second.promises.resolve(foreign, "hello")
            assert second.get(id).result(timeout=30) == "hello on second"
        finally:
            second.stop()
    finally:
        server.stop()
