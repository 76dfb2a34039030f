"""Child processes for the interop tests: official-SDK programs and Sustain workers.

``Child`` starts one process with its output in a log file (stdout and stderr), parses the
``RESULT {json}`` lines the programs of ``apps/`` and ``ts/`` print, and is killed with
SIGKILL where a test crashes it.  ``py``, ``node`` and ``sustain_worker`` build the command
lines; nothing here imports an official SDK (they run in their own interpreters).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.interop.env import ROOT, Environment
from tests.scenarios.processes import wait_until

APPS = Path(__file__).resolve().parent / "apps"
OFFICIAL_PY = APPS / "official_py.py"


def _clean_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)
    env.update(extra or {})
    return env


class Child:
    def __init__(
        self, argv: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None
    ) -> None:
        self.argv = argv
        self.log = log
        with log.open("ab") as sink:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=_clean_env(env), stdout=sink, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def results(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for line in self.output().splitlines():
            if line.startswith("RESULT "):
                result = json.loads(line[len("RESULT ") :])
                found[result["name"]] = result
        return found

    def wait_results(self, names: list[str], timeout: float = 120) -> dict[str, dict[str, Any]]:
        def ready() -> bool:
            if not self.alive() and not set(names) <= set(self.results()):
                raise AssertionError(
                    f"{self.argv[:3]} exited {self.proc.returncode}:\n{self.output()}"
                )
            return set(names) <= set(self.results())

        try:
            wait_until(ready, timeout, f"results {names}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.log.name} ---\n{self.output()}") from None
        return self.results()

    def kill9(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.argv[:3]} still running:\n{self.output()}") from None


class Launcher:
    """Builds children for one test module: logs in ``tmp``, stopped by ``close``."""

    def __init__(self, env: Environment, url: str, tmp: Path) -> None:
        self.env = env
        self.url = url
        self.tmp = tmp
        self.children: list[Child] = []

    def _start(self, argv: list[str], name: str, cwd: Path, env: dict[str, str] | None) -> Child:
        log = self.tmp / f"{name}-{time.monotonic_ns()}.log"
        child = Child(argv, log, cwd, env)
        self.children.append(child)
        return child

    def py(self, command: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """``official_py.py command --url ... args`` under the Python 3.12 venv."""
        argv = [str(self.env.python), str(OFFICIAL_PY), command, "--url", self.url, *args]
        return self._start(argv, f"py-{command}", self.tmp, env)

    def py_cases(self, group: str, plan: list[dict[str, Any]], **kw: Any) -> Child:
        return self.py("cases", "--group", group, "--plan", json.dumps(plan), **kw)

    def node(self, command: str, *args: str, env: dict[str, str] | None = None) -> Child:
        """``node --require ./polyfill.cjs app.mjs command --url ... args`` (Node 20)."""
        argv = ["node", "--require", "./polyfill.cjs", "app.mjs", command, "--url", self.url,
                *args]  # fmt: skip
        return self._start(argv, f"ts-{command}", self.env.node_dir, env)

    def node_cases(self, group: str, plan: list[dict[str, Any]], **kw: Any) -> Child:
        return self.node("cases", "--group", group, "--plan", json.dumps(plan), **kw)

    def sustain_worker(
        self, group: str, env: dict[str, str] | None = None, app: str = "sustain_app"
    ) -> Child:
        """``sustain worker tests.interop.apps.<app>:sustain --group group``."""
        sustain = str(Path(sys.executable).parent / "sustain")  # the installed script
        argv = [sustain, "worker", f"tests.interop.apps.{app}:sustain", "--group", group]
        full = {"SUSTAIN_URL": self.url, "PYTHONPATH": str(ROOT), **(env or {})}
        return self._start(argv, "sustain-worker", ROOT, full)

    def close(self) -> None:
        for child in self.children:
            child.stop()


def wait_for_line(child: Child, prefix: str, timeout: float = 60) -> str:
    """The first line of ``child``'s output starting with ``prefix``."""

    def found() -> bool:
        if not child.alive():
            raise AssertionError(f"{child.argv[:3]} exited:\n{child.output()}")
        return any(line.startswith(prefix) for line in child.output().splitlines())

    wait_until(found, timeout, f"{prefix!r} from {child.argv[:3]}")
    return next(line for line in child.output().splitlines() if line.startswith(prefix))


def lines_of(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for_file(path: Path, child: Child, what: str, line: str | None = None) -> None:
    """Wait until ``path`` has content (or the line ``line``); fail at once if ``child`` dies."""

    def ready() -> bool:
        if not child.alive():
            raise AssertionError(f"{child.argv[:3]} exited before {what}:\n{child.output()}")
        if line is not None:
            return line in lines_of(path)
        return path.exists() and path.read_text() != ""

    wait_until(ready, 90, what)
