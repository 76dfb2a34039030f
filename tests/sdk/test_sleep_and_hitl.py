"""A 3-day durable sleep under a fake clock with no worker alive meanwhile, and a human in
the loop resolved from another process with the ``sustain`` CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from sustain import Context, Sustain
from sustain.runtime.clock import Clock
from sustain.sdk.local import LocalNetwork
from tests.sdk.conftest import unique
from tests.sdk.test_context import wait_pending
from tests.servers import ServerProcess

THREE_DAYS = timedelta(days=3)


class JumpedClock(Clock):
    """Wall time moved forward by a fixed offset."""

    def __init__(self, offset: timedelta) -> None:
        super().__init__()
        self.offset_ms = int(offset.total_seconds() * 1000)

    def now(self) -> int:
        return super().now() + self.offset_ms


def rest(ctx: Context) -> Any:
    yield ctx.sleep(THREE_DAYS)
    return "rested"


def test_three_day_sleep_completes_with_no_worker_alive_meanwhile(tmp_path: Path) -> None:
    db, group, id = str(tmp_path / "sleep.db"), unique("g"), unique("sleep")
    week = timedelta(days=7)
    with Sustain(network=LocalNetwork(db), group=group) as before:
        before.register(rest)
        handle = before.options(timeout=week).run(id, rest)
        wait_pending(before, f"{id}:1")
        timer = before.promises.get(f"{id}:1")
        assert timer["state"] == "pending" and timer["tags"]["resonate:timer"] == "true"
        assert not handle.done()
    # nothing runs here for three (simulated) days; then a new process opens the file
    clock = JumpedClock(THREE_DAYS + timedelta(seconds=1))
    with Sustain(network=LocalNetwork(db, clock=clock), group=group) as after:
        after.register(rest)
        assert after.get(id).result(timeout=60) == "rested"
        assert after.promises.get(f"{id}:1")["state"] == "resolved"


def test_cli_resolves_a_human_in_the_loop_promise(sdk_server: ServerProcess) -> None:
    with Sustain(url=sdk_server.url, group=unique("g")) as sustain:

        @sustain.register
        async def approve(ctx: Context, order: str) -> str:
            decision = await ctx.promise()
            return f"{order}:{decision}"

        id = unique("hitl")
        handle = sustain.run(id, approve, "o-1")
        wait_pending(sustain, f"{id}:1")
        value = "approved"  # not JSON: the CLI takes it as a string and encodes it
        cli = Path(sys.executable).parent / "sustain"
        done = subprocess.run(
            [str(cli), "-S", sdk_server.url, "promises", "resolve", f"{id}:1", "--value", value],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert handle.result(timeout=60) == "o-1:approved"
