"""Fixtures of the queue tests: a real server, and worker processes of the queue app
(queue_app.py) that are killed at the end whatever the outcome."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sdk.conftest import unique
from tests.sdk.test_crash import spawn
from tests.servers import ServerProcess, start_server

SUSTAIN = str(Path(sys.executable).parent / "sustain")


class Workers:
    """Worker processes of one group, logging to one file."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.group = unique("qg")
        self.log = tmp / "jobs.log"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, server: ServerProcess, **env: str) -> subprocess.Popen[bytes]:
        argv = [SUSTAIN, "worker", "tests.queues.queue_app:sustain", "--group", self.group]
        full = {"SUSTAIN_URL": server.url, "QUEUE_LOG": str(self.log), "QUEUE_GROUP": self.group}
        proc = spawn(argv, {**full, **env}, self.tmp / f"{name}.out")
        self.procs[name] = proc
        deadline = time.monotonic() + 30
        while "serving group" not in self.output(name):
            assert proc.poll() is None, self.output(name)
            assert time.monotonic() < deadline, self.output(name)
            time.sleep(0.05)
        return proc

    def output(self, name: str) -> str:
        path = self.tmp / f"{name}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path)
    try:
        yield proc
    finally:
        proc.stop()
