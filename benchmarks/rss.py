"""RSS: the server's resident memory holding 100,000 pending promises.

One run = a fresh ``sustain serve`` on SQLite; load-generator processes
(benchmarks/loadgen.py, mode ``create``) create ``count`` pending promises (no target, far
future timeout, so nothing is scheduled or sent) over 256 keep-alive connections as fast as
the server answers, each answer checked.  Then ``VmRSS`` (resident now) and ``VmHWM`` (peak)
are read from ``/proc/<pid>/status``, next to the RSS of the idle server just after
start-up, so that the per-promise cost is visible: (rss − idle) / count.

What the number means: a server on SQLite keeps promises in the database file, not in
Python objects, so RSS should be the interpreter + SQLite's page cache (capped by
``PRAGMA cache_size``) + buffers, largely independent of the count.
"""

from __future__ import annotations

import json
import time
from typing import Any

from benchmarks.harness import Server
from benchmarks.throughput import generator

CLIENTS = 256  # many in flight: big group-commit batches, so the run stays short


def run_once(count: int, generators: int, client: str = "raw") -> dict[str, Any]:
    server = Server().start()
    try:
        time.sleep(0.5)  # let start-up allocations settle before the idle reading
        idle = server.memory_kb()
        per = count // generators
        procs = []
        for g in range(generators):
            n = per if g < generators - 1 else count - per * (generators - 1)
            spec = {
                "mode": "create", "url": server.url, "clients": CLIENTS // generators,
                "prefix": f"rss-{g}", "count": n, "client": client,
            }  # fmt: skip
            procs.append(generator(spec))
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=1800)
            if proc.returncode != 0:
                raise RuntimeError(f"load generator failed (exit {proc.returncode})")
            results.append(json.loads(out))
        time.sleep(0.5)  # answers are sent after commit; let the last buffers go
        mem = server.memory_kb()
        db = server.db_bytes()
    finally:
        server.cleanup()
    created = sum(r["ops"] for r in results)
    seconds = max(r["seconds"] for r in results)
    rss_mb = mem["VmRSS"] / 1024
    return {
        "workload": "rss",
        "case": f"{count:,} pending",
        "promises": created,
        "errors": sum(r["errors"] for r in results) + (count - created),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "rss_mb": rss_mb,
        "peak_rss_mb": mem["VmHWM"] / 1024,
        "idle_rss_mb": idle["VmRSS"] / 1024,
        "bytes_per_promise": (mem["VmRSS"] - idle["VmRSS"]) * 1024 / max(1, created),
        "db_mb": db / 2**20,
        "creates_per_s": created / seconds,
        "generator_cpu": sum(r["cpu_share"] for r in results),
    }


def runs(quick: bool, repeat: int, generators: int, client: str) -> list[dict[str, Any]]:
    count = 10_000 if quick else 100_000
    out = []
    for _ in range(repeat):
        row = run_once(count, generators, client)
        print(json.dumps(row), flush=True)
        out.append(row)
    return out
