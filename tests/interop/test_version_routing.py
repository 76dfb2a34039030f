"""Version routing beside an official SDK worker (protocol/versions.py).

One group holds an official Python worker (its poll stream announces nothing) and a Sustain
worker that announces ``py_greet`` v1; both register ``py_greet``, and each answer says who
ran it.  Executions pinned to ``py_greet`` v1 only ever reach the Sustain worker (a random
pick would reach the official one half of the time); unpinned ones still reach the official
worker, which runs them as before: it is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sustain import Sustain
from tests.interop.harness import Launcher, wait_for_line
from tests.servers import ServerProcess, unique

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def caller(server: ServerProcess) -> Iterator[Sustain]:
    sustain = Sustain(url=server.url, group=unique("sus-caller"))  # registers nothing
    yield sustain
    sustain.stop()


def test_pinned_executions_skip_official_workers_unpinned_ones_reach_them(
    launch: Launcher, caller: Sustain, server: ServerProcess
) -> None:
    group = unique("mixed")
    wait_for_line(launch.py("worker", "--group", group), "WORKER")
    wait_for_line(launch.sustain_worker(group, app="versions_app"), "worker ")
    listed = httpx.get(f"{server.url}/workers").json()["workers"]
    assert sorted(str(w["functions"]) for w in listed if w["group"] == group) == [
        "None",
        "{'py_greet': [1]}",
    ]

    pinned = caller.options(target=group, version=1)
    runs = [pinned.rpc(unique("pinned"), "py_greet", i) for i in range(10)]
    assert [h.result(timeout=120) for h in runs] == [{"got": i, "by": "sustain"} for i in range(10)]

    plain = caller.options(target=group)  # by name, not known here: not pinned
    runs = [plain.rpc(unique("plain"), "py_greet", i) for i in range(14)]
    by = {h.result(timeout=120)["by"] for h in runs}
    assert "official-py" in by  # the official worker still gets unpinned work
