"""The leftover-process guard (tests/process_guard.py) fails a run that leaves a process
running, kills what it found, and passes a clean run: pytest runs inside pytest, with and
without xdist."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LEAKS_A_CHILD = """
import subprocess

def test_leaks():
    proc = subprocess.Popen(["sleep", "60"])
    open("leaked.pid", "w").write(str(proc.pid))
"""

# The shell exits at once: its background sleep is orphaned, nobody's descendant any more.
ORPHANS_A_PROCESS = """
import subprocess

def test_orphans():
    subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $! > leaked.pid"], check=True)
"""

CLEAN = """
import subprocess

def test_clean():
    proc = subprocess.Popen(["sleep", "60"])
    proc.kill()
    proc.wait()
"""


def gone(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, source: str, *args: str
) -> pytest.RunResult:
    """``source`` as the only test file of a pytest run in a subprocess, with the guard."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    pytester.makepyfile(test_it=source)
    guard = ("-p", "tests.process_guard", "-p", "no:cacheprovider")
    return pytester.runpytest_subprocess(*guard, *args)


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["alone", "xdist"])
def test_a_leaked_child_fails_the_run_and_is_killed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: tuple[str, ...]
) -> None:
    result = run(pytester, monkeypatch, LEAKS_A_CHILD, *xdist)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*left 1 process(es) running*", "*sleep 60*"])
    assert gone(int((pytester.path / "leaked.pid").read_text()))


def test_an_orphaned_process_fails_the_run_and_is_killed(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Under xdist, as make test runs: found by the top process, after the workers are gone.
    result = run(pytester, monkeypatch, ORPHANS_A_PROCESS, "-n", "1")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*left 1 process(es) running*", "*sleep 60*"])
    assert gone(int((pytester.path / "leaked.pid").read_text().strip()))


def test_a_clean_run_passes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run(pytester, monkeypatch, CLEAN)
    result.assert_outcomes(passed=1)
    assert result.ret == 0
