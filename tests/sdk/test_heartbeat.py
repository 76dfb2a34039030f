"""Leases of tasks of several origins are kept by one heartbeat, longer than the ttl."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

from sustain import Context, Sustain
from tests.sdk.conftest import unique
from tests.servers import ServerProcess


def test_two_origins_keep_their_leases_through_steps_longer_than_the_ttl(
    sdk_server: ServerProcess, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.log"
    lock = threading.Lock()
    sustain = Sustain(url=sdk_server.url, group=unique("beat"), ttl=1.0)

    def slow(ctx: Context, name: str) -> str:
        with lock, runs.open("a") as log:
            log.write(name + "\n")
        time.sleep(2.5)  # 2.5 lease lengths: only heartbeats keep the task here
        return name

    @sustain.register
    def wf(ctx: Context, name: str) -> Any:
        return (yield ctx.run(slow, name))

    try:
        first, second = unique("a"), unique("b")  # two roots: two origins held at once
        handles = [sustain.begin_run(first, wf, "one"), sustain.begin_run(second, wf, "two")]
        assert [h.result(timeout=60) for h in handles] == ["one", "two"]
        assert sorted(runs.read_text().split()) == ["one", "two"]  # no lease lapsed
        for id in (first, second):
            task = sdk_server.ok("task.get", {"id": id})["task"]
            assert (task["state"], task["version"]) == ("fulfilled", 1), task
    finally:
        sustain.stop()


def test_a_run_finished_by_another_worker_still_reaches_its_handle(
    sdk_server: ServerProcess,
) -> None:
    """The caller runs the first pass itself (``task.create`` acquired), without a listener;
    when that pass suspends, the listener is registered, so the worker of the target group
    that finishes the execution is heard."""
    here, there = unique("here"), unique("there")
    caller = Sustain(url=sdk_server.url, group=here)
    other = Sustain(url=sdk_server.url, group=there)
    passes: list[str] = []

    def runs_in(where: str) -> Any:
        def wf(ctx: Context) -> Any:
            passes.append(where)
            yield ctx.sleep(0.3)  # suspends: the timer's resumption goes to the target group
            return f"finished {where}"

        return wf

    caller.register(runs_in("here"), name="wf")
    other.register(runs_in("there"), name="wf")
    try:
        other.start()
        handle = caller.options(target=there).run(unique("moved"), "wf")
        assert handle.result(timeout=30) == "finished there"
        assert passes == ["here", "there"]  # the caller's first pass, the other's replay
    finally:
        caller.stop()
        other.stop()


def _heartbeats(server: ServerProcess) -> float:
    text = server.client.get("/metrics").text
    found = re.search(r'sustain_request_total\{kind="task.heartbeat",status="200"\} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def test_short_tasks_cost_no_heartbeat(sdk_server: ServerProcess) -> None:
    """A beat leaves out leases set in the last ttl/6: workflows that each hold their task for
    a few milliseconds, run back to back for six beat periods, need no renewal at all (before,
    each beat renewed whichever task was held at that instant: about one write per period)."""
    sustain = Sustain(url=sdk_server.url, group=unique("short"), ttl=1.5)  # a beat per 0.5 s

    @sustain.register
    def quick(ctx: Context, n: int) -> Any:
        return (yield ctx.run(lambda ctx, n: n + 1, n))

    try:
        sustain.run(unique("warm"), quick, 0).result(timeout=30)
        before = _heartbeats(sdk_server)
        ends = time.monotonic() + 3.0
        n = 0
        while time.monotonic() < ends:
            assert sustain.run(unique("q"), quick, n).result(timeout=30) == n + 1
            n += 1
        # Zero unless one workflow held its task for more than 0.25 s (a loaded machine).
        assert _heartbeats(sdk_server) - before <= 1, n
    finally:
        sustain.stop()
