"""Leases of tasks of several origins are kept by one heartbeat, longer than the ttl."""

from __future__ import annotations

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
