"""W1-W4 on DBOS Transact: run *inside the DBOS virtual environment*, one process per run.

``<venv>/bin/python benchmarks/peers/dbos_app.py --db-url URL --workload w1 --size 1000``
launches DBOS on a fresh system database (the runner creates it: a new SQLite file, or a new
PostgreSQL database it drops afterwards), runs one warm-up workflow, times one workload and
prints one JSON object of *raw* results (wall seconds, the workflows' return values, this
process's CPU seconds).  The runner in the project's own environment checks the results and
turns them into a row (``peers/workloads.py``), so every peer is checked by the same code.

The code is DBOS's documented idiom: ``@DBOS.workflow()`` functions calling ``@DBOS.step()``
functions, ``DBOS.start_workflow`` for workflows started without waiting (W2) and for child
workflows (W3), ``handle.get_result()`` to await them, ``DBOS.sleep`` for the durable sleep.

SQLite: DBOS needs a newer SQLite than Debian 12's 3.40, so ``sqlite3`` is aliased to
``pysqlite3`` (``pysqlite3-binary``, a recent SQLite) before ``dbos`` is imported; every later
``import sqlite3`` (SQLAlchemy's pysqlite dialect) then gets it.  Harmless on PostgreSQL.

Only the standard library, ``dbos`` and ``pysqlite3`` are importable here (not ``sustain``).
"""

from __future__ import annotations

import sys

import pysqlite3

sys.modules["sqlite3"] = pysqlite3  # before dbos / SQLAlchemy import sqlite3: see above

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

from dbos import DBOS, DBOSConfig  # noqa: E402


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@DBOS.step()
def add_one(x: int) -> int:
    return x + 1


@DBOS.step()
def wall_clock() -> float:
    return time.time()


@DBOS.workflow()
def chain(n: int) -> int:
    """W1: ``n`` sequential durable steps; returns ``n``."""
    x = 0
    for _ in range(n):
        x = add_one(x)
    return x


@DBOS.workflow()
def three(x: int) -> int:
    """W2: three sequential steps; returns ``x + 3``."""
    for _ in range(3):
        x = add_one(x)
    return x


@DBOS.workflow()
def double(i: int) -> int:
    """W3's child: a child workflow of its own (started by ``fanout``)."""
    return 2 * i


@DBOS.workflow()
def fanout(n: int) -> int:
    """W3: start ``n`` child workflows at once, then sum them; returns ``n * (n - 1)``."""
    handles = [DBOS.start_workflow(double, i) for i in range(n)]
    return sum(handle.get_result() for handle in handles)


@DBOS.workflow()
def nap(seconds: float) -> list[float]:
    """W4: the intended wake time as the workflow sees it (wall clock just before the sleep +
    ``seconds``; the runner replaces it by the deadline the peer recorded for the sleep), then
    the wall clock recorded by the first step after the durable sleep."""
    intended = time.time() + seconds
    DBOS.sleep(seconds)
    return [intended, wall_clock()]


@DBOS.workflow()
def ping() -> str:
    return "pong"


def run(workload: str, size: int) -> dict[str, Any]:
    cpu0, t0 = _cpu(), time.perf_counter()
    out: dict[str, Any]
    if workload == "w1":
        out = {"result": chain(size)}
    elif workload == "w2":
        handles = [DBOS.start_workflow(three, i) for i in range(size)]
        out = {"results": [handle.get_result() for handle in handles]}
    elif workload == "w3":
        out = {"result": fanout(size)}
    elif workload == "w4":
        naps = [DBOS.start_workflow(nap, 1.0) for _ in range(size)]
        out = {"wakes": [handle.get_result() for handle in naps]}
    else:
        raise SystemExit(f"unknown workload {workload!r}")
    out["seconds"] = time.perf_counter() - t0
    out["cpu_s"] = _cpu() - cpu0
    if workload == "w4":
        # After the timed part: replace each workflow's own clock reading by the deadline
        # DBOS.sleep recorded (its step output), the exact analogue of Sustain's timeoutAt.
        for pair, handle in zip(out["wakes"], naps, strict=True):
            pair[0] = _sleep_deadline(handle.get_workflow_id())
        out["deadline"] = "recorded"
    return out


def _sleep_deadline(workflow_id: str) -> float | None:
    for step in DBOS.list_workflow_steps(workflow_id):
        if step["function_name"] == "DBOS.sleep" and step["output"] is not None:
            return float(step["output"])
    return None  # counted as an error by the runner


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url", required=True)
    parser.add_argument("--workload", required=True)
    parser.add_argument("--size", type=int, required=True)
    args = parser.parse_args()
    config: DBOSConfig = {
        "name": "sustain-bench",
        "system_database_url": args.db_url,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        if ping() != "pong":  # warm-up: connections, lazy imports, the first transaction
            raise SystemExit("DBOS warm-up workflow answered wrongly")
        result = run(args.workload, args.size)
        # The aliased module: report which SQLite DBOS really used.
        result["sqlite_version"] = sys.modules["sqlite3"].sqlite_version
        print(json.dumps(result), flush=True)
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
