"""``kill_test``: crash a real worker process with SIGKILL against a real server.

The in-process ``crash_test`` (crash.py) stops at every checkpoint exactly; this is its
integration-test variant, where nothing is simulated: a ``sustain worker APP`` process
(``WorkerProcess``) runs the function for a server at ``url``, and the test process watches
the execution through the server (``promise.search`` of the execution's promises) and sends
SIGKILL once ``k`` of its steps are settled.  The kill lands wherever the worker is then (in
the next step, between a step and its checkpoint...): "after at least k steps", not at one
exact checkpoint.  A fresh worker with the same ``--pid`` starts, takes back at once what
its dead predecessor held (sdk/recovery.py), and the execution must end with the result of
a run that was never killed.

Every worker it starts is stopped or killed before it returns, whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sustain.errors import SustainError
from sustain.sdk.client import Sustain
from sustain.sdk.handles import Handle

POLL_S = 0.01
READY = "serving group"  # the worker's banner (cli/worker.py)


class WorkerProcess:
    """``sustain -S URL worker APP --group G --pid P`` as a child, its output in ``log``."""

    def __init__(
        self, app: str, url: str, group: str, pid: str, log: Path, *,
        cwd: Path | None = None, env: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        cli = Path(sys.executable).parent / "sustain"
        argv = [str(cli), "-S", url, "worker", app, "--group", group, "--pid", pid]
        full = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
        full["PYTHONUNBUFFERED"] = "1"
        if cwd is not None:  # the app's module is found where the test keeps it
            full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), full.get("PYTHONPATH")]))
        full.update(env or {})
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=full, stdout=sink, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill9()
                raise SustainError(f"worker did not start:\n{self.output()}")
            time.sleep(POLL_S)

    def kill9(self) -> None:
        """SIGKILL: no cleanup runs in the worker (nothing released, nothing flushed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM (the worker's drain), then SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()


@dataclass(frozen=True)
class Kill:
    """One kill: asked after ``k`` settled steps; ``settled`` were settled when it landed."""

    k: int
    settled: int
    outcome: Any


@dataclass
class KillReport:
    outcome: Any
    kills: list[Kill] = field(default_factory=list)


class KillTestFailure(SustainError, AssertionError):
    """An execution killed after ``kill.settled`` steps ended with ``kill.outcome``, not
    ``expected`` (its result without a kill)."""

    def __init__(self, kill: Kill, expected: Any) -> None:
        self.kill = kill
        self.expected = expected
        super().__init__(
            f"killed with SIGKILL after {kill.settled} settled steps, the execution gave "
            f"{kill.outcome!r}, not {expected!r} as without a kill"
        )


def _settled_steps(client: Sustain, id: str) -> tuple[int, bool]:
    """(settled promises of execution ``id``, whether the execution itself is settled); the
    root carries its own origin tag, so one search sees it too (none yet: not created)."""
    page = client.promises.search(tags={"resonate:origin": id}, limit=1000)
    steps = [p for p in page["promises"] if p["id"] != id]
    done = any(p["id"] == id and p["state"] != "pending" for p in page["promises"])
    return sum(p["state"] != "pending" for p in steps), done


def _outcome(handle: Handle, timeout: float) -> Any:
    try:
        return handle.result(timeout=timeout)
    except SustainError as exc:
        return (type(exc).__name__, str(exc))


def kill_test(
    url: str,
    app: str,
    func: str,
    args: Sequence[Any] = (),
    *,
    kill_after: Iterable[int] = (1, 2, 3),
    logs: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> KillReport:
    """Run ``func(*args)`` (registered on ``app``, module:attr) on a worker of the server at
    ``url`` once without a kill, then once per ``k`` of ``kill_after``, SIGKILLing the
    worker after ``k`` settled steps and starting a fresh one (see the module docstring).
    Worker output goes to files in ``logs``.  Raises ``KillTestFailure`` when a killed
    execution's result differs."""
    group, pid = f"kill-{uuid.uuid4().hex[:8]}", "kill-test-worker"
    started: list[WorkerProcess] = []

    def worker(n: int) -> WorkerProcess:
        w = WorkerProcess(app, url, group, pid, logs / f"worker-{n}.log", cwd=cwd, env=env)
        started.append(w)
        w.wait_ready(timeout)
        return w

    with Sustain(url=url, group=f"{group}-client") as client:
        calls = client.options(target=group)
        try:
            first = worker(0)
            expected = _outcome(calls.rpc(f"{group}-0", func, *args), timeout)
            first.stop()
            report = KillReport(expected)
            for n, k in enumerate(kill_after, start=1):
                id = f"{group}-{n}"
                victim = worker(2 * n - 1)
                handle = calls.rpc(id, func, *args)
                deadline = time.monotonic() + timeout
                settled, done = _settled_steps(client, id)
                while settled < k and not done and time.monotonic() < deadline:
                    time.sleep(POLL_S)
                    settled, done = _settled_steps(client, id)
                victim.kill9()
                heir = worker(2 * n)
                kill = Kill(k, settled, _outcome(handle, timeout))
                heir.stop()
                report.kills.append(kill)
                if kill.outcome != expected:
                    raise KillTestFailure(kill, expected)
            return report
        finally:
            for w in started:
                w.kill9()
