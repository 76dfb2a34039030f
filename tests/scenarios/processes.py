"""Real processes for the scenario tests: a server, workers and clients on 127.0.0.1.

Every scenario test starts ``sustain serve`` (``scenario_server``), runs the example's own
code in child processes (``Proc``: the project's interpreter, output to a log file, the
current checkout on ``PYTHONPATH``), and kills them with SIGKILL where the scenario crashes.
Durations are shortened through configuration only: server flags, environment variables the
example reads, never a code path in Sustain.

The store of the server is SQLite by default; the test of each scenario that exercises the
server most also runs on PostgreSQL (the ``store`` fixture of the conftest, a ``Store`` with
a throw-away database that ``scenario_server`` passes as ``--postgres``).  A restart passes
the same ``Store``, so the new server reopens the same database, as it reopens the SQLite file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from tests.servers import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SUSTAIN = str(Path(sys.executable).parent / "sustain")  # the CLI of this environment


@dataclass(frozen=True)
class Store:
    """The store a scenario's server runs on: SQLite (a file in the test's directory) without
    ``url``, else the PostgreSQL database at ``url`` (its own, created and dropped by the
    ``store`` fixture)."""

    url: str | None = None

    def flags(self) -> tuple[str, ...]:
        return ("--postgres", self.url) if self.url else ()


SQLITE = Store()


def scenario_server(
    tmp: Path,
    *flags: str,
    db: Path | None = None,
    port: int | None = None,
    store: Store = SQLITE,
) -> ServerProcess:
    """``sustain serve`` on a free port with SQLite in ``tmp`` (the README's ``make serve``),
    or on ``store``'s PostgreSQL database; a restart passes the ``port``, ``db`` and ``store``
    of the server it replaces."""
    return start_server(tmp, *store.flags(), *flags, db=db, port=port)


class Proc:
    """One child process running Python code of an example, with its output in ``log``.

    Every ``Proc`` is remembered in ``Proc.started``; ``reap()`` SIGKILLs those still alive
    (the scenario conftest does it after each test, so a failed test leaves no process).
    """

    started: ClassVar[list[Proc]] = []

    def __init__(
        self, args: Sequence[str], log: Path, env: dict[str, str] | None = None, cwd: Path = ROOT
    ) -> None:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
        full["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full.get("PYTHONPATH")]))
        full["PYTHONUNBUFFERED"] = "1"
        full.update(env or {})
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, *args], env=full, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
            )
        Proc.started.append(self)

    @classmethod
    def reap(cls) -> None:
        while cls.started:
            cls.started.pop().kill9()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """SIGKILL: the crash of the scenario (no cleanup runs in the child)."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait: the graceful end of a worker."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(timeout=10)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.proc.args} still running:\n{self.output()}") from None


def wait_until(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    """Poll ``check`` every 50 ms until it holds; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def sustain_worker(
    app: str, group: str, log: Path, env: dict[str, str] | None = None, ready: bool = True
) -> Proc:
    """``sustain worker app --group group`` (the README's command); with ``ready``, wait
    until it says it serves the group."""
    proc = Proc([SUSTAIN, "worker", app, "--group", group], log, env)
    if ready:
        wait_until(
            lambda: "serving group" in proc.output() or not proc.alive(), 60, f"worker {app}"
        )
        assert proc.alive(), proc.output()
    return proc
