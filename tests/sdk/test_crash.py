"""Crash tests with real processes: SIGKILL after step k, resume elsewhere, no step re-run.

A process runs a ten-step workflow whose steps append their number to a file; step k+1
hangs in that process, so when the file shows k+1 lines steps 1..k are settled, and the test
SIGKILLs it.  A second process (the embedded restart on the same file, or another worker of
the group against the server) resumes after the lease lapses: the file then shows 1..k once,
k+1 twice (it never finished the first time) and the rest once, and the result is right.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk.conftest import unique
from tests.servers import ServerProcess, start_server

STEPS, K = 10, 4
ROOT = Path(__file__).resolve().parents[2]


def lines(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()] if path.exists() else []


def spawn(args: list[str], env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "CRASH_"))}
    full.update(env)
    with out.open("wb") as sink:
        return subprocess.Popen(args, env=full, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)


def wait_lines(path: Path, count: int, proc: subprocess.Popen[bytes], out: Path) -> None:
    deadline = time.monotonic() + 60
    while len(lines(path)) < count:
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)


def crash_and_resume(
    env: dict[str, str], tmp: Path, worker: list[str], waiter_group: str | None = None
) -> str:
    """Run, crash after step K, resume with ``worker`` (if any) and wait in a ``get``."""
    log = tmp / "steps.log"
    group = unique("crash")
    env = {**env, "CRASH_LOG": str(log), "CRASH_GROUP": group}
    id = unique("wf")
    run = [sys.executable, "-m", "tests.sdk.crash_app", id, str(STEPS)]
    first = spawn(run, {**env, "CRASH_HANG_AT": str(K + 1)}, tmp / "first.out")
    wait_lines(log, K + 1, first, tmp / "first.out")
    first.send_signal(signal.SIGKILL)
    first.wait()
    helpers = [spawn([*worker, "--group", group], env, tmp / "worker.out")] if worker else []
    try:
        waiter_env = {**env, "CRASH_GROUP": waiter_group or group}
        get = [sys.executable, "-m", "tests.sdk.crash_app", "get", id]
        resumed = spawn(get, waiter_env, tmp / "second.out")
        assert resumed.wait(timeout=90) == 0, (tmp / "second.out").read_text()
    finally:
        for helper in helpers:
            helper.send_signal(signal.SIGTERM)
            assert helper.wait(timeout=30) == 0  # graceful stop
    assert lines(log) == [*range(1, K + 2), *range(K + 1, STEPS + 1)]
    return (tmp / "second.out").read_text().strip().splitlines()[-1]


@pytest.fixture(scope="module")
def crash_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # An execute pushed to the killed worker's stream is lost until the task retry timeout
    # re-sends it: a short one keeps the test quick without changing what it shows.
    proc = start_server(tmp_path_factory.mktemp("crash"), "--retry-timeout", "2000")
    yield proc
    proc.stop()


@pytest.mark.slow
def test_embedded_restart_resumes_on_the_same_file(tmp_path: Path) -> None:
    env = {"CRASH_STORE": str(tmp_path / "crash.db")}
    assert crash_and_resume(env, tmp_path, []) == str(sum(range(1, STEPS + 1)))


@pytest.mark.slow
def test_remote_worker_of_the_group_resumes(tmp_path: Path, crash_server: ServerProcess) -> None:
    env = {"SUSTAIN_URL": crash_server.url}
    worker = [str(Path(sys.executable).parent / "sustain"), "worker", "tests.sdk.crash_app:sustain"]
    # the waiter is in another group: only the CLI worker can resume the workflow
    result = crash_and_resume(env, tmp_path, worker, waiter_group=unique("waiter"))
    assert result == str(sum(range(1, STEPS + 1)))
    assert "serving group" in (tmp_path / "worker.out").read_text()
