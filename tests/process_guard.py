"""The leftover-process guard: a test session that leaves a process running fails.

Every test stops every process it starts, even when it fails; this plugin checks it.  At the
end of a session it lists, from ``/proc``:

* the descendants of the pytest process: in every process that runs tests (the only process
  without xdist, each xdist worker with it), at the teardown of a session-scoped autouse
  fixture, so the error lands on that worker's last test and fails the run;
* every process carrying this run's token in its environment (``RUN_TOKEN``, set by the
  process that starts the session and inherited by xdist workers and everything they start):
  in the top process (without xdist: the same process), after xdist shut its workers down.
  This finds what a test orphaned (a double fork, a child whose parent was killed): such a
  process is nobody's descendant any more.

Why a token and not "a command line that names this checkout": two runs in one checkout (a
targeted test while the whole suite runs, or the suite's own pytester runs) would take each
other's live servers for leftovers.  The token belongs to one run only.  A process started
with an environment built from nothing escapes the token, but not the descendant check.

What is found is reported with its command line, then SIGKILLed, so that even a failing run
leaves nothing behind.  Zombies are ignored: they are dead, only not yet reaped.  A process
being stopped may take a moment to go: the guard waits up to ``GRACE`` seconds before
deciding.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RUN_TOKEN = "LEFTOVER_GUARD_RUN"
GRACE = 2.0


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    cmdline: str


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:  # gone meanwhile, or not ours to read
        return None


def processes() -> dict[int, Process]:
    """Every live (not zombie) process, by pid."""
    found: dict[int, Process] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read(entry / "stat")
        if stat is None:
            continue
        # The command name (in parentheses) may hold spaces: split after its closing one.
        fields = stat[stat.rindex(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        cmdline = (_read(entry / "cmdline") or b"").replace(b"\0", b" ").decode(errors="replace")
        found[int(entry.name)] = Process(int(entry.name), int(fields[1]), cmdline.strip())
    return found


def descendants(root: int, table: dict[int, Process]) -> list[Process]:
    children: dict[int, list[Process]] = {}
    for proc in table.values():
        children.setdefault(proc.ppid, []).append(proc)
    out: list[Process] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child.pid)
    return out


def ancestors(pid: int, table: dict[int, Process]) -> set[int]:
    seen = {pid}
    while pid in table and table[pid].ppid not in seen:
        pid = table[pid].ppid
        seen.add(pid)
    return seen


def carrying(token: str, table: dict[int, Process]) -> list[Process]:
    """The processes whose environment holds ``RUN_TOKEN=token``, but this one and its
    ancestors."""
    marker = f"{RUN_TOKEN}={token}".encode()
    mine = ancestors(os.getpid(), table)
    out = []
    for proc in table.values():
        if proc.pid in mine:
            continue
        environ = _read(Path(f"/proc/{proc.pid}/environ"))
        if environ is not None and marker in environ.split(b"\0"):
            out.append(proc)
    return out


def leftovers(token: str | None) -> list[Process]:
    """What is still running after ``GRACE`` seconds: descendants of this process, and with
    ``token`` the processes carrying it."""
    deadline = time.monotonic() + GRACE
    while True:
        table = processes()
        found = {p.pid: p for p in descendants(os.getpid(), table)}
        if token is not None:
            found.update((p.pid, p) for p in carrying(token, table))
        if not found or time.monotonic() > deadline:
            return sorted(found.values(), key=lambda p: p.pid)
        time.sleep(0.1)


def kill(found: list[Process]) -> None:
    for proc in found:
        with contextlib.suppress(ProcessLookupError):  # it went by itself meanwhile
            os.kill(proc.pid, signal.SIGKILL)


def report(found: list[Process]) -> str:
    lines = "\n".join(f"  pid {p.pid} (parent {p.ppid}): {p.cmdline[:300]}" for p in found)
    return (
        f"the tests left {len(found)} process(es) running (now killed); every test must stop "
        f"what it starts, even when it fails:\n{lines}"
    )


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _runs_workers(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not _is_xdist_worker(config)


def pytest_configure(config: pytest.Config) -> None:
    # The process that starts the run gives it a fresh token (a pytester run inside the suite
    # gets its own); xdist workers inherit it.
    if not _is_xdist_worker(config):
        os.environ[RUN_TOKEN] = uuid.uuid4().hex


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    # Session scope and autouse: set up before any other fixture, torn down after every other
    # (module servers, session databases), at the end of this process's last test.
    yield
    # An xdist worker checks its descendants only: the other workers' processes carry the
    # same token and are still legitimately running.
    token = None if _is_xdist_worker(request.config) else os.environ.get(RUN_TOKEN)
    found = leftovers(token)
    if found:
        kill(found)
        pytest.fail(report(found), pytrace=False)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Trylast: after xdist's own sessionfinish shut the workers down (they carry the token).
    if not _runs_workers(session.config):
        return
    found = leftovers(os.environ.get(RUN_TOKEN))
    if found:
        kill(found)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(report(found), red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
