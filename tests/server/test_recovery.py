"""Worker restart and drain against a real server, on SQLite and on PostgreSQL (issue 17).

Real processes throughout: a ``sustain serve`` server, ``sustain worker`` processes serving
``tests.sdk.crash_app`` with a 300 s lease, and a caller that sends the three-step workflow
to their group with ``rpc`` and waits for its result.  Every wait here is at most 30 s, ten
times less than the lease, so a pass proves that nothing waited for a lease to lapse.

* restart: a worker is SIGKILLed while step 3 runs and started again with the same
  per-host slot, hence the same pid; it takes back what its previous incarnation held.
* drain: SIGINT while step 2 runs; the worker says it is draining, step 2 finishes, and the
  rest is released after ``--drain-timeout`` to another member, which takes it at once.
* a second SIGINT during the drain ends it now: the worker exits 1 and the task is
  released to another member.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk.conftest import unique
from tests.sdk.test_crash import lines, spawn, wait_lines
from tests.servers import ServerProcess, start_server
from tests.store.postgres_db import create_database, drop_database

STEPS = 3
SUSTAIN = str(Path(sys.executable).parent / "sustain")
PATIENCE = 30  # seconds; the lease is 300


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def recovery_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("recovery")
    if request.param == "sqlite":
        proc = start_server(tmp)
        yield proc
        proc.stop()
        return
    url = create_database()
    try:
        proc = start_server(tmp, "--postgres", url)
        yield proc
        proc.stop()
    finally:
        drop_database(url)


class Run:
    """One workflow: its processes (all stopped at the end), its log and environment."""

    def __init__(self, tmp: Path, server: ServerProcess) -> None:
        self.tmp = tmp
        self.log = tmp / "steps.log"
        self.group = unique("rec")
        self.id = unique("wf")
        self.env = {
            "SUSTAIN_URL": server.url,
            "CRASH_LOG": str(self.log),
            "CRASH_GROUP": self.group,
            "CRASH_TTL": "300",
            "SUSTAIN_WORKER_STATE_DIR": str(tmp / "state"),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.caller: subprocess.Popen[bytes] | None = None

    def worker(self, name: str, *flags: str, **env: str) -> subprocess.Popen[bytes]:
        argv = [SUSTAIN, "worker", "tests.sdk.crash_app:sustain", "--group", self.group, *flags]
        proc = spawn(argv, {**self.env, **env}, self.tmp / f"{name}.out")
        self.procs.append(proc)
        return proc

    def call(self) -> None:
        caller_env = {**self.env, "CRASH_GROUP": unique("caller"), "CRASH_TARGET": self.group}
        argv = [sys.executable, "-m", "tests.sdk.crash_app", "rpc", self.id, str(STEPS)]
        self.caller = spawn(argv, caller_env, self.tmp / "caller.out")
        self.procs.append(self.caller)

    def result(self) -> str:
        assert self.caller is not None
        assert self.caller.wait(timeout=PATIENCE) == 0, self.output("caller")
        return self.output("caller").split()[-1]

    def output(self, name: str) -> str:
        return (self.tmp / f"{name}.out").read_text(errors="replace")

    def wait_output(self, name: str, text: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + PATIENCE
        while text not in self.output(name):
            assert proc.poll() is None, self.output(name)
            assert time.monotonic() < deadline, self.output(name)
            time.sleep(0.05)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def run(tmp_path: Path, recovery_server: ServerProcess) -> Iterator[Run]:
    r = Run(tmp_path, recovery_server)
    yield r
    r.close()


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=PATIENCE)


def test_a_restarted_worker_takes_back_its_tasks_at_once(run: Run) -> None:
    first = run.worker("first", CRASH_HANG_AT=str(STEPS))
    run.wait_output("first", "serving group", first)
    run.call()
    wait_lines(run.log, STEPS, first, run.tmp / "first.out")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=PATIENCE)
    second = run.worker("second")  # same host, same group, same state dir: the same slot
    assert run.result() == str(sum(range(1, STEPS + 1)))
    assert stop(second) == 0
    pid = run.output("first").split("worker ")[1].split()[0]
    assert f"worker {pid} serving" in run.output("second")
    assert lines(run.log) == [1, 2, 3, 3]


def test_two_workers_of_a_group_on_one_host_get_different_pids(run: Run) -> None:
    one, two = run.worker("one"), run.worker("two")
    run.wait_output("one", "serving group", one)
    run.wait_output("two", "serving group", two)
    pids = {run.output(n).split("worker ")[1].split()[0] for n in ("one", "two")}
    assert len(pids) == 2
    assert stop(one) == 0
    assert stop(two) == 0


def test_a_drain_lets_the_running_step_finish_and_releases_the_rest(run: Run) -> None:
    first = run.worker(
        "first", "--drain-timeout", "3", CRASH_SLOW_AT="2", CRASH_SLOW_SECONDS="1",
        CRASH_HANG_AT=str(STEPS),
    )  # fmt: skip
    run.wait_output("first", "serving group", first)
    run.call()
    wait_lines(run.log, 2, first, run.tmp / "first.out")
    first.send_signal(signal.SIGINT)
    run.wait_output("first", "draining 1 tasks (Ctrl-C again to stop now)", first)
    second = run.worker("second", "--pid", unique("other"))
    assert first.wait(timeout=PATIENCE) == 0, run.output("first")
    assert run.result() == str(sum(range(1, STEPS + 1)))
    assert stop(second) == 0
    # step 2 was running when the drain began: it finished there and never ran again;
    # step 3 hung in the draining worker, was released, and ran again in the other one
    assert lines(run.log) == [1, 2, 3, 3]
    assert lines(Path(str(run.log) + ".done")) == [2]


def test_a_second_sigint_stops_at_once_and_releases_the_task(run: Run) -> None:
    first = run.worker("first", "--drain-timeout", "300", CRASH_HANG_AT="2")
    run.wait_output("first", "serving group", first)
    run.call()
    wait_lines(run.log, 2, first, run.tmp / "first.out")
    first.send_signal(signal.SIGINT)
    run.wait_output("first", "draining 1 tasks", first)
    # another member is up before the task is released: the release's execute goes to it
    second = run.worker("second", "--pid", unique("other"))
    run.wait_output("second", "serving group", second)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=PATIENCE) == 1, run.output("first")
    assert run.result() == str(sum(range(1, STEPS + 1)))
    assert stop(second) == 0
    assert lines(run.log) == [1, 2, 2, 3]
