"""A stopping worker takes no new work: its stream closes before it drains what it runs."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from sustain import Context, Sustain
from tests.sdk.conftest import unique
from tests.servers import ServerProcess


def connected_pids(server: ServerProcess, group: str) -> set[str]:
    workers = httpx.get(f"{server.url}/workers", timeout=10).json()["workers"]
    return {w["pid"] for w in workers if w["group"] == group}


def test_a_stopping_worker_leaves_new_work_to_the_others(sdk_server: ServerProcess) -> None:
    group = unique("stop")
    gate = threading.Event()

    def hold(ctx: Context) -> str:
        gate.wait(60)
        return "drained"

    def make(pid: str) -> Sustain:
        sustain = Sustain(url=sdk_server.url, group=group, pid=pid)

        @sustain.register
        def slow(ctx: Context) -> Any:
            return (yield ctx.run(hold))

        @sustain.register
        def quick(ctx: Context, n: int) -> Any:
            return n * 2

        return sustain

    leaving, staying = make("leaving"), make("staying")
    caller = Sustain(url=sdk_server.url, group=unique("caller"))
    stopper: threading.Thread | None = None
    try:
        staying.start()
        slow = leaving.run(unique("slow"), "slow")  # runs in `leaving`, held at the gate
        deadline = time.monotonic() + 30
        while connected_pids(sdk_server, group) != {"leaving", "staying"}:
            assert time.monotonic() < deadline, connected_pids(sdk_server, group)
            time.sleep(0.05)
        stopper = threading.Thread(target=leaving.stop)
        stopper.start()  # waits for the held task: the worker is draining
        while connected_pids(sdk_server, group) != {"staying"}:
            assert time.monotonic() < deadline, "the stopping worker kept its stream open"
            time.sleep(0.05)
        # Every new execution now goes to the member that stays, at once: none waits out the
        # task retry timeout (30 s on this server) in a worker that would ignore it.
        start = time.monotonic()
        quick = [caller.options(target=group).rpc(unique("q"), "quick", n) for n in range(6)]
        assert [h.result(timeout=20) for h in quick] == [0, 2, 4, 6, 8, 10]
        assert time.monotonic() - start < 15
        gate.set()
        assert slow.result(timeout=30) == "drained"  # the draining worker finished its task
    finally:
        gate.set()
        if stopper is not None:
            stopper.join(60)
        for sustain in (staying, caller):
            sustain.stop()
