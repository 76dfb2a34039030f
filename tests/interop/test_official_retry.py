"""Sustain's retry of a failed execution, run by an official Python SDK worker.

``fragile`` (apps/official_py.py) is registered by an unmodified resonate-sdk 0.8.1 worker;
its step 2 fails until a file exists.  ``Sustain.retry`` copies step 1 under the new root's
id and starts it; the official SDK's replay mints the same child ids (SDK-WIRE §2.1), finds
step 1 resolved and runs only steps 2 and 3.  The ``sustain:retry-of`` tag on the root is
one it does not know, and ignores.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sustain import ApplicationError, Sustain
from tests.interop.harness import Launcher, lines_of, wait_for_line
from tests.servers import ServerProcess, unique

pytestmark = pytest.mark.timeout(600)


def test_an_official_worker_runs_a_retry_without_running_again_what_resolved(
    launch: Launcher, server: ServerProcess, tmp_path: Path
) -> None:
    counts, fixed = tmp_path / "counts.txt", tmp_path / "fixed"
    group, tag = unique("py-retry"), unique("fragile")
    wait_for_line(launch.py("worker", "--group", group, env={"INTEROP_COUNTS": str(counts)}),
                  "WORKER")  # fmt: skip
    client = Sustain(url=server.url, group=unique("sus-client"))
    try:
        root = unique("fragile")
        failed = client.options(target=group).rpc(root, "fragile", tag, str(fixed))
        with pytest.raises(ApplicationError, match="is broken until"):
            failed.result(timeout=60)
        assert Counter(lines_of(counts)) == {f"step:{tag}:1": 1, f"step:{tag}:2": 1}

        fixed.touch()
        handle = client.retry(root)
        assert handle.result(timeout=60) == [10, 20, 30]
        assert Counter(lines_of(counts)) == {
            f"step:{tag}:1": 1, f"step:{tag}:2": 2, f"step:{tag}:3": 1,
        }  # fmt: skip
        step = client.promises.get(f"{handle.id}:1")
        assert (step["state"], step["tags"]["resonate:origin"]) == ("resolved", handle.id)
    finally:
        client.stop()
