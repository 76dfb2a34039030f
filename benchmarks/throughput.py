"""S1: HTTP ``promise.create`` + ``promise.settle`` throughput and fsyncs per operation.

One run = one fresh ``sustain serve`` on a new SQLite file (``synchronous=FULL``), driven by
``generators`` load-generator processes (benchmarks/loadgen.py) with ``clients``
keep-alive connections in total.  All generators share one measuring window after a
warm-up; ops/s = (creates + settles answered 200 inside the window) / window, so one
create and its settle count as 2 operations.

fsyncs per operation: fsync + fdatasync calls of the server inside the same window (strace,
see harness.py) divided by the operations.  With group commit one fsync covers a whole
batch, so it falls below 1 as concurrency grows.  The server's CPU share (of one core; the
SQLite writer thread can push it above 100 %) and the generators' show who is saturated;
the server's run-queue wait (summed over its threads, same unit) shows how much of the
latency is other processes holding the CPUs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from benchmarks.harness import REPO, Server, clean_env


def generator(spec: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.loadgen", json.dumps(spec)],
        cwd=REPO,
        env=clean_env(),
        stdout=subprocess.PIPE,
    )


def launch(
    urls: Sequence[str], clients: int, prefix: str, *, warmup: float, seconds: float, client: str
) -> tuple[list[subprocess.Popen[bytes]], float, float]:
    """One generator per url (``clients`` split evenly) on a shared measuring window; answers
    the processes and the window's start and end (epoch seconds)."""
    # Generators need about half a second to start Python and import aiohttp.
    warm_from = time.time() + 0.8
    start_at = warm_from + warmup
    end_at = start_at + seconds
    procs = []
    for g, url in enumerate(urls):
        share = clients // len(urls) + (1 if g < clients % len(urls) else 0)
        spec = {
            "mode": "pairs", "url": url, "clients": share, "prefix": f"{prefix}-{g}",
            "warm_from": warm_from, "client": client, "start_at": start_at, "end_at": end_at,
        }  # fmt: skip
        procs.append(generator(spec))
    return procs, start_at, end_at


def collect(procs: Sequence[subprocess.Popen[bytes]]) -> list[dict[str, Any]]:
    """Every generator's result line (a failed generator fails the run)."""
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"load generator failed (exit {proc.returncode})")
        results.append(json.loads(out))
    return results


def summary(results: Sequence[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """The generators' results as one row: operations in the window, errors, latencies (the
    worst generator's percentiles), the generators' CPU share."""
    ops = sum(r["ops"] for r in results)
    p50s = [r["lat_p50_ms"] for r in results if r["lat_p50_ms"] is not None]
    p99s = [r["lat_p99_ms"] for r in results if r["lat_p99_ms"] is not None]
    return {
        "ops": ops,
        "ops_per_s": ops / seconds,
        "errors": sum(r["errors"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "lat_p50_ms": max(p50s) if p50s else None,
        "lat_p99_ms": max(p99s) if p99s else None,
        "generator_cpu": sum(r["cpu_share"] for r in results),
    }


def run_once(
    clients: int,
    *,
    warmup: float,
    seconds: float,
    generators: int,
    trace: bool,
    client: str = "raw",
) -> dict[str, Any]:
    server = Server(trace_fsync=trace).start()
    try:
        generators = max(1, min(generators, clients))
        procs, start_at, end_at = launch(
            [server.url] * generators, clients, f"s1-{clients}",
            warmup=warmup, seconds=seconds, client=client,
        )  # fmt: skip
        time.sleep(max(0.0, start_at - time.time()))
        cpu0, wait0, t0 = server.cpu_seconds(), server.runqueue_wait_seconds(), time.time()
        time.sleep(max(0.0, end_at - time.time()))
        elapsed = time.time() - t0
        server_cpu = (server.cpu_seconds() - cpu0) / elapsed
        server_wait = (server.runqueue_wait_seconds() - wait0) / elapsed
        results = collect(procs)
        server.stop()
        fsyncs = server.fsyncs_between(start_at, end_at)
    finally:
        server.cleanup()
    row = summary(results, seconds)
    ops = row["ops"]
    return {
        "workload": "s1",
        "case": f"{clients} clients",
        "clients": clients,
        "generators": generators,
        "client": client,
        **row,
        "fsyncs": fsyncs,
        "fsyncs_per_op": (fsyncs / ops) if fsyncs is not None and ops else None,
        "server_cpu": server_cpu,
        # Load-independent-ish cost: server CPU per operation (all threads).
        "server_cpu_ms_per_op": server_cpu * seconds * 1000 / ops if ops else None,
        "server_runqueue_wait": server_wait,
        "seconds": seconds,
    }


def runs(
    quick: bool, repeat: int, generators: int, trace: bool, client: str
) -> list[dict[str, Any]]:
    """The S1 runs: every concurrency level, ``repeat`` times (interleaved, so a slow phase
    of the machine does not fall on one level only)."""
    levels = (1, 16, 64)
    warmup, seconds = (0.5, 1.5) if quick else (1.0, 3.0)
    out = []
    for _ in range(repeat):
        for clients in levels:
            row = run_once(
                clients,
                warmup=warmup,
                seconds=seconds,
                generators=generators,
                trace=trace,
                client=client,
            )
            print(json.dumps(row), flush=True)
            out.append(row)
    return out
