"""Embedded restart resumes at once (issue 17 item 1), with real processes and SIGKILL.

A process runs a three-step workflow on a SQLite file with a 300 s lease and is SIGKILLed
while step 3 runs.  A new process opens the same file: the store's file lock proves the old
holder dead, so it releases that holder's tasks at start and resumes the workflow without
waiting for the lease.  Finishing inside the 30 s this test allows, ten times less than the
ttl, is the proof; how fast it really is is measured by ``python -m benchmarks recovery``.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tests.sdk.conftest import unique
from tests.sdk.test_crash import lines, spawn, wait_lines

STEPS = 3
TTL = "300"  # seconds: far beyond every wait of this test


@pytest.mark.parametrize("resume", ["get", "run"])
def test_a_restart_on_the_same_file_resumes_without_waiting_for_the_lease(
    tmp_path: Path, resume: str
) -> None:
    """``get``: the restarted process makes no call at all (the function is registered
    before start, the takeover runs it); ``run``: it calls run with the same id."""
    log = tmp_path / "steps.log"
    env = {
        "CRASH_STORE": str(tmp_path / "crash.db"),
        "CRASH_LOG": str(log),
        "CRASH_GROUP": unique("emb"),
        "CRASH_TTL": TTL,
    }
    id = unique("wf")
    first = spawn(
        [sys.executable, "-m", "tests.sdk.crash_app", id, str(STEPS)],
        {**env, "CRASH_HANG_AT": str(STEPS)},
        tmp_path / "first.out",
    )
    second = None
    try:
        wait_lines(log, STEPS, first, tmp_path / "first.out")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        args = ["get", id] if resume == "get" else [id, str(STEPS)]
        second = spawn(
            [sys.executable, "-m", "tests.sdk.crash_app", *args], env, tmp_path / "second.out"
        )
        assert second.wait(timeout=30) == 0, (tmp_path / "second.out").read_text()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (tmp_path / "second.out").read_text().split()[-1] == str(sum(range(1, STEPS + 1)))
    # steps 1 and 2 were settled before the kill and never ran again; 3 ran twice
    assert lines(log) == [1, 2, 3, 3]
