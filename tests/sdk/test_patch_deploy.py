"""A patch deployed under a running execution, with real worker processes (issue 21).

The first deploy's worker starts an execution, which runs its fraud check and suspends on a
durable sleep; the worker is SIGKILLed.  The second deploy (``ctx.patched`` around a new
check) takes over the group: the old execution, woken by its timer, replays past the patch
point without a marker and finishes on the old branch (the old check is not run again); an
execution started now records the marker and takes the new branch.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from sustain import Sustain
from sustain.sdk.patches import PATCH
from tests.sdk.conftest import unique
from tests.sdk.test_crash import spawn
from tests.servers import ServerProcess

WORKER = [str(Path(sys.executable).parent / "sustain"), "worker", "tests.sdk.patch_app:sustain"]


def wait_for(client: Sustain, id: str) -> dict[str, object]:
    deadline = time.monotonic() + 30
    while True:
        try:
            record: dict[str, object] = client.promises.get(id)
            return record
        except Exception:
            assert time.monotonic() < deadline, f"{id} was never created"
            time.sleep(0.05)


@pytest.mark.slow
def test_old_execution_finishes_on_the_old_branch_new_one_on_the_new(
    tmp_path: Path, retry_server: ServerProcess
) -> None:
    server = retry_server  # an execute sent to the killed worker's stream comes back soon
    group, log = unique("patch"), tmp_path / "steps.log"
    env = {"SUSTAIN_URL": server.url, "PATCH_GROUP": group, "PATCH_LOG": str(log)}
    client = Sustain(url=server.url, group=unique("caller"))
    workers = []
    try:
        first = spawn(WORKER, {**env, "PATCH_CODE": "1"}, tmp_path / "deploy1.out")
        workers.append(first)
        old_id, new_id = unique("old"), unique("new")
        old = client.options(target=group).rpc(old_id, "order", 7, 3.0)
        assert wait_for(client, f"{old_id}:2")["state"] == "pending"  # the sleep
        first.send_signal(signal.SIGKILL)
        first.wait()

        second = spawn(WORKER, {**env, "PATCH_CODE": "2"}, tmp_path / "deploy2.out")
        workers.append(second)
        new = client.options(target=group).rpc(new_id, "order", 8, 0.5)
        assert new.result(timeout=60) == "v2:8:done"
        assert old.result(timeout=60) == "v1:7:done"

        marker = client.promises.get(f"{new_id}:1")
        assert marker["tags"][PATCH] == "new-fraud-check"
        assert client.promises.get(f"{old_id}:1")["tags"].get(PATCH) is None
        steps = log.read_text().split()
        # deploy 1 checked the old execution once; deploy 2 replayed that check, and ran the
        # new check only for the new execution
        assert sorted(steps) == sorted(
            ["deploy1:check_v1", "deploy2:check_v2", "deploy2:finish", "deploy2:finish"]
        )
    finally:
        client.stop()
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                worker.wait(timeout=30)
