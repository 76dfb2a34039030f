"""Queues with official SDK workers (issue 20): the ``sustain:*`` tags pass through an
official worker untouched, and the server's queue still orders and bounds its work.

Official Python and TypeScript workers serve their groups; Sustain's SDK (this process) puts
calls to them on a queue of one slot.  Each call runs once with the right result, the queue
let every one out, and nothing waits when they are done.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sustain import Sustain
from tests.interop.harness import Launcher, wait_for_line
from tests.servers import ServerProcess, unique

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def caller(server: ServerProcess) -> Iterator[Sustain]:
    sustain = Sustain(url=server.url, group=unique("sus-caller"))
    try:
        yield sustain
    finally:
        sustain.stop()


@pytest.mark.parametrize(("sdk", "fn"), [("py", "py_add"), ("ts", "ts_add")])
def test_official_workers_run_queued_calls(
    launch: Launcher, caller: Sustain, sdk: str, fn: str
) -> None:
    group = unique(f"{sdk}-queued")
    worker = launch.py("worker", "--group", group) if sdk == "py" else launch.node(
        "worker", "--group", group
    )  # fmt: skip
    wait_for_line(worker, "WORKER")
    q = unique("q")
    caller.queue(q, concurrency=1)
    view = caller.options(target=group, queue=q, key="k", priority=1)
    handles = [view.rpc(unique("add"), fn, i, 100) for i in range(6)]
    assert [h.result(timeout=120) for h in handles] == [i + 100 for i in range(6)]
    info = caller.queues.get(q)
    assert (info["dispatched"], info["running"], info["waiting"]) == (6, 0, 0)
