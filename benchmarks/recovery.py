"""Recovery latency (issue 17): how long after a restart the killed workflow runs again.

A three-step workflow with a **300 s lease** is SIGKILLed while step 3 runs, in one of:

* ``embedded``: the process running it on a SQLite file; a new process opens the same file
  and only waits for the result (``get``): no call to ``run`` resumes it, the takeover does;
* ``worker sqlite`` / ``worker postgres``: a ``sustain worker`` process (the workflow was
  sent to its group by a caller, which keeps waiting); a new worker with the same per-host
  slot, hence the same pid, starts; the server runs on SQLite or PostgreSQL.

Measured from the log the steps write (benchmarks/recovery_app.py): **start-up** = spawn
of the new process → its module imported (the interpreter and the imports, not Sustain's
doing); **recovery** = module imported → step 3 begins again (start, takeover, delivery,
acquire, replay of steps 1-2 from the store); **total** = spawn → step 3 again, the
"first step of recovery within 1 s of start" of the issue; **done** = spawn → the result
reached the waiting process.  Without the takeover, recovery would be the lease, 300 s.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.cluster import DATABASES
from benchmarks.harness import Server, clean_env
from benchmarks.stats import Row, cases, fmt, median_row, span, table
from benchmarks.throwaway_db import NoPostgres

SUSTAIN = str(Path(sys.executable).parent / "sustain")
APP = [sys.executable, "-m", "benchmarks.recovery_app"]
WAIT = 60.0  # seconds any one phase may take before the run counts as failed


def _times(log: Path) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            name, _, at = line.partition(" ")
            found.setdefault(name, []).append(float(at))
    return found


def _until(log: Path, name: str, count: int, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + WAIT
    while len(_times(log).get(name, [])) < count:
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError(f"step {name} not seen {count} times in {log}")
        time.sleep(0.01)


def _banner(out: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT
    while b"serving group" not in out.read_bytes():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(out.read_text(errors="replace"))
        time.sleep(0.01)


class _Procs:
    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp, self.env = tmp, env
        self.all: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, argv: list[str], **env: str) -> subprocess.Popen[bytes]:
        with (self.tmp / f"{name}.out").open("wb") as out:
            proc = subprocess.Popen(
                argv, env={**self.env, **env}, stdout=out, stderr=subprocess.STDOUT
            )
        self.all.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.all:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@contextmanager
def _procs(env: dict[str, str]) -> Iterator[_Procs]:
    tmp = Path(tempfile.mkdtemp(prefix="sustain-bench-recovery-"))
    procs = _Procs(tmp, {**clean_env(), **env, "REC_LOG": str(tmp / "steps.log")})
    try:
        yield procs
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _row(case: str, log: Path, spawned: float, done: float) -> Row:
    times = _times(log)
    ready, again = times["ready"][-1], times["3"][-1]
    return {
        "workload": "recovery", "case": case, "startup_s": ready - spawned,
        "recovery_s": again - ready, "total_s": again - spawned, "done_s": done - spawned,
        "errors": 0,
    }  # fmt: skip


def _embedded() -> Row:
    with _procs({}) as p:
        log = p.tmp / "steps.log"
        p.env["REC_STORE"] = str(p.tmp / "app.db")
        id = f"rec-{uuid.uuid4().hex[:8]}"
        first = p.spawn("first", [*APP, id], REC_HANG_AT="3")
        _until(log, "3", 1, [first])
        first.send_signal(signal.SIGKILL)
        first.wait()
        spawned = time.time()
        second = p.spawn("second", [*APP, "get", id])
        if second.wait(timeout=WAIT) != 0:
            raise RuntimeError((p.tmp / "second.out").read_text())
        return _row("embedded", log, spawned, time.time())


def _worker(case: str, server: Server) -> Row:
    group = f"rec-{uuid.uuid4().hex[:8]}"
    with _procs({"SUSTAIN_URL": server.url, "REC_GROUP": group}) as p:
        log = p.tmp / "steps.log"
        p.env["SUSTAIN_WORKER_STATE_DIR"] = str(p.tmp / "state")
        worker = [SUSTAIN, "worker", "benchmarks.recovery_app:sustain", "--level", "warning"]
        first = p.spawn("first", worker, REC_HANG_AT="3")
        _banner(p.tmp / "first.out", first)  # its stream is up: the call will reach it
        caller = p.spawn(
            "caller", [*APP, "rpc", group], REC_GROUP=f"{group}-caller", REC_TARGET=group
        )
        _until(log, "3", 1, [first, caller])
        first.send_signal(signal.SIGKILL)
        first.wait()
        spawned = time.time()
        p.spawn("second", worker)  # the same slot, hence the same pid
        if caller.wait(timeout=WAIT) != 0:
            raise RuntimeError((p.tmp / "caller.out").read_text())
        return _row(case, log, spawned, time.time())


def _print(row: Row) -> Row:
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}),
          flush=True)  # fmt: skip
    return row


def runs(quick: bool, repeat: int) -> list[Row]:
    rows: list[Row] = []
    for _ in range(repeat):
        rows.append(_print(_embedded()))
    with Server() as server:
        for _ in range(repeat):
            rows.append(_print(_worker("worker sqlite", server)))
    try:
        with DATABASES.temp() as url, Server(extra=("--postgres", url)) as server:
            for _ in range(repeat):
                rows.append(_print(_worker("worker postgres", server)))
    except NoPostgres as exc:
        print(f"recovery on PostgreSQL skipped: {exc}", file=sys.stderr)
    del quick  # every run is short already
    return rows


def recovery_table(rows: list[Row]) -> str:
    out = []
    for case, group in cases(rows):
        m = median_row(group)
        out.append([
            case, str(len(group)), fmt(m["startup_s"], 2), fmt(m["recovery_s"], 2),
            fmt(m["total_s"], 2), span(group, "total_s", 2), fmt(m["done_s"], 2),
        ])  # fmt: skip
    headers = [
        "Recovery (lease 300 s)",
        "runs",
        "start-up s",
        "recovery s",
        "total s (median)",
        "total min-max",
        "done s",
    ]
    return table(headers, out) + "\nGoal: the first step of recovery within 1 s of start."
