"""The Getting-started page's programs, run as the page writes them.

Every ```python block of docs/getting-started.md whose first line is ``# NAME.py`` is written
to a temporary directory as NAME.py.  The embedded examples run twice (the second run must
return the stored result without running the step again); the server example runs against a
real ``sustain serve`` with a real ``sustain worker``, its URL rewritten to the test server's
port.  The console transcripts on the page are checked against what the programs print.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "getting-started.md"
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"```python\n(# (\S+\.py)\n.*?)```", re.S)
PAGE_URL = "http://127.0.0.1:8001"


def programs() -> dict[str, str]:
    return {m.group(2): m.group(1) for m in BLOCK.finditer(PAGE.read_text())}


def transcript(command: str) -> list[str]:
    """The lines the page shows under ``$ <command>`` (every occurrence, in order)."""
    text = PAGE.read_text()
    out: list[str] = []
    for block in re.findall(r"```console\n(.*?)```", text, re.S):
        lines = block.splitlines()
        for i, line in enumerate(lines):
            if line == f"$ {command}":
                for follow in lines[i + 1 :]:
                    if follow.startswith("$ "):
                        break
                    out.append(follow)
    return out


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
    return {**clean, "PYTHONUNBUFFERED": "1"}


def run(tmp: Path, *argv: str) -> str:
    done = subprocess.run(
        [*argv], cwd=tmp, env=env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def wait_for_worker(server: ServerProcess, group: str) -> None:
    """Until a worker of ``group`` holds a poll stream: an execute sent before that finds no
    stream and waits for the task retry timeout (30 s), as the page says."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        workers = server.client.get("/workers").json()["workers"]
        if any(w["group"] == group for w in workers):
            return
        time.sleep(0.05)
    raise AssertionError(f"no worker of {group!r} connected")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name, source in programs().items():
        (tmp_path / name).write_text(source)
    return tmp_path


def test_the_page_has_the_programs() -> None:
    assert set(programs()) == {"hello.py", "hello_async.py", "app.py", "client.py"}


def test_embedded_runs_once_then_returns_the_stored_result(workdir: Path) -> None:
    first = run(workdir, sys.executable, "hello.py")
    second = run(workdir, sys.executable, "hello.py")
    assert (first + second).splitlines() == transcript(".venv/bin/python hello.py")
    assert "charging" not in second


def test_embedded_async(workdir: Path) -> None:
    out = run(workdir, sys.executable, "hello_async.py")
    assert out.strip() == "{'order': 'o2', 'receipt': 'receipt-o2-42'}"


def test_server_and_worker(workdir: Path) -> None:
    server: ServerProcess = start_server(workdir)
    worker = None
    try:
        for name in ("app.py", "client.py"):
            path = workdir / name
            assert PAGE_URL in path.read_text()
            path.write_text(path.read_text().replace(PAGE_URL, server.url))
        with (workdir / "worker.log").open("w") as log:
            worker = subprocess.Popen(
                [str(BIN / "sustain"), "worker", "app:sustain"],
                cwd=workdir, env=env(), stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for_worker(server, "workers")
        out = run(workdir, sys.executable, "client.py")
        assert out.splitlines() == transcript(".venv/bin/python client.py")
        tree = run(workdir, str(BIN / "sustain"), "-S", server.url, "tree", "order-3")
        assert "(run charge)" in tree
        assert "(sleep)" in tree
        # the page's `sustain invoke` line, as written
        line = re.search(r"^\.venv/bin/sustain (invoke .*)$", PAGE.read_text(), re.M)
        assert line is not None
        run(workdir, str(BIN / "sustain"), "-S", server.url, *shlex.split(line.group(1)))
        deadline = time.monotonic() + 30
        while server.ok("promise.get", {"id": "order-4"})["promise"]["state"] == "pending":
            assert time.monotonic() < deadline, "order-4 did not finish"
            time.sleep(0.1)
        assert server.ok("promise.get", {"id": "order-4"})["promise"]["state"] == "resolved"
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
    printed = (workdir / "worker.log").read_text()
    assert printed.count("charging o3") == 1
    assert printed.count("charging o4") == 1
