"""PostgreSQL and cluster workloads (issue 6): ``python -m benchmarks pg`` and ``cluster``.

Every run creates its own PostgreSQL database (``sustain_bench_<pid>_<hex>`` on the server
of the tests, 127.0.0.1:5432 with trust auth, or ``SUSTAIN_BENCH_POSTGRES_URL``; the
database of a killed earlier run is dropped by the next), starts N real ``sustain serve
--postgres URL --replica-id rI`` processes on it (``harness.Server`` with extra flags: free
port, no ``sustain.toml``, no ``SUSTAIN_*`` variable), and drops the database afterwards.

* **pg**: W1 (1,000 sequential steps) and W2 (1,000 workflows of 3 steps) of
  ``workflows.py`` on **one replica**, exactly the server mode of ``make bench sdk`` with
  the store swapped: one worker process ``sustain worker benchmarks.sdk_worker:sustain``
  and the caller in this process.  Printed beside the issue's goal, 2x the official
  PostgreSQL implementation of the protocol (resonate on PostgreSQL, measured on this
  machine at ~4.2 ms per step and ~104 workflows/s).
* **cluster**: with 1, 2 and 3 replicas on one database,
  - S1's load (``loadgen.py`` "pairs": ``promise.create`` then ``promise.settle``, every
    answer checked) from 64 keep-alive clients in 3 generator processes, generator ``g``
    on replica ``g mod N`` (so the generators stay the same while the replicas change);
    ops/s over one shared window, per-operation latency p50/p99 (max over generators);
  - W2 with 3 worker processes and 3 callers (``Sustain(url=...)`` in this process), worker
    and caller ``i`` on replica ``i mod N``; the workflows are started round-robin over
    the callers.  Again the same processes whatever N is: only the replicas change.

Every case reports the CPU of each kind of process per operation: the replicas (summed),
the PostgreSQL backends serving the database (found in ``pg_stat_activity``, read from
``/proc``), the workers and the callers / generators.  On a 2-core machine shared by all of
them this, not the rate, is what tells whether a replica added capacity or only overhead.

Readiness: an execute or unblock sent to a poll stream that is not connected yet is held
for a replica timeout and then dropped, so before warming up the run waits until the
``poll_connections`` table lists every worker's and caller's stream.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import statistics
import subprocess
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo

from benchmarks import throughput, workflows
from benchmarks.cpucap import CpuCap
from benchmarks.harness import Server, clean_env
from benchmarks.sdk_app import GROUP
from benchmarks.sdk_modes import SUSTAIN_CLI, Mode, pid_cpu, self_cpu
from benchmarks.stats import Row, cases, errors, fmt, median_row, span, table
from benchmarks.throwaway_db import Databases
from sustain import Sustain
from sustain.sdk.handles import Handle

WORKLOADS = ("pg", "cluster")
REPLICAS = (1, 2, 3)
CLIENTS = 64
GENERATORS = 3  # S1 load-generator processes in every cluster case
SPREAD = 3  # W2 worker processes and callers in every cluster case
W1_STEPS, W2_WORKFLOWS = 1000, 1000
QUICK_W1_STEPS, QUICK_W2_WORKFLOWS = 100, 200

# Throw-away databases (benchmarks/throwaway_db.py), maintenance URL overridable.
DATABASES = Databases("sustain_bench_", "SUSTAIN_BENCH_POSTGRES_URL")


# -- a cluster of replicas on one database --------------------------------------------------
class Cluster:
    """``n`` ``sustain serve`` replicas on a fresh database, and the CPU of its parts."""

    def __init__(self, n: int, cpu_per_replica: float | None = None) -> None:
        self.n = n
        self.replicas: list[Server] = []
        self.caps: list[CpuCap] = []
        self._db = DATABASES.temp()
        self.url = self._db.__enter__()
        self.dbname = str(psycopg.conninfo.conninfo_to_dict(self.url)["dbname"])
        self._admin = psycopg.connect(self.url, autocommit=True)
        self._pg_cpu: dict[int, float] = {}
        try:
            # One after the other: the first applies the migrations (the others would wait
            # on its advisory lock anyway), and start-up CPU does not overlap.
            for i in range(n):
                extra = ("--postgres", self.url, "--replica-id", f"r{i + 1}")
                self.replicas.append(Server(extra=extra).start())
                if cpu_per_replica:
                    # Capped after start-up (migrations, imports): the quota is about the
                    # replica's serving capacity, and start-up is not measured.
                    self.caps.append(CpuCap(cpu_per_replica))
                    self.caps[-1].add(self.replicas[-1].pid)
        except BaseException:
            self.close()
            raise

    def poll_streams(self, group: str) -> int:
        """SSE poll streams of ``group`` the replicas have published."""
        row = self._admin.execute(
            "SELECT count(*) FROM poll_connections WHERE poll_group = %s", (group,)
        ).fetchone()
        return int(row[0]) if row else 0

    def wait_streams(self, wanted: dict[str, int], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while any(self.poll_streams(g) < n for g, n in wanted.items()):
            if time.monotonic() > deadline:
                got = {g: self.poll_streams(g) for g in wanted}
                raise RuntimeError(f"poll streams not connected after {timeout}s: {got}")
            time.sleep(0.05)

    def server_cpu(self) -> float:
        return sum(r.cpu_seconds() for r in self.replicas)

    def throttled_s(self) -> float:
        """Seconds the replicas were held back by their CPU quota (summed)."""
        return sum(cap.throttled_s() for cap in self.caps)

    def postgres_cpu(self) -> float:
        """CPU seconds of the PostgreSQL backends serving this database, including those that
        have exited since the last call (their last reading stays counted)."""
        pids = self._admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (self.dbname,),
        ).fetchall()
        for (pid,) in pids:
            seconds = pid_cpu(int(pid))
            if seconds:
                self._pg_cpu[int(pid)] = seconds
        return sum(self._pg_cpu.values())

    def close(self) -> None:
        try:
            for replica in self.replicas:
                replica.cleanup()
        finally:
            for cap in self.caps:
                cap.close()
            with contextlib.suppress(psycopg.Error):
                self._admin.close()
            self._db.__exit__(None, None, None)


def _start_worker(url: str, log_path: Path, timeout: float = 30.0) -> subprocess.Popen[bytes]:
    env = {**clean_env(), "SUSTAIN_URL": url}
    cmd = [str(SUSTAIN_CLI), "worker", "benchmarks.sdk_worker:sustain",
           "--group", GROUP, "--level", "warning"]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=log_path.parent, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + timeout
    while b"serving group" not in log_path.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    return proc


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ClusterMode(Mode):
    """Server mode of the SDK workloads on a PostgreSQL cluster: ``workers`` worker
    processes and ``callers`` callers, number ``i`` of each on replica ``i mod n``;
    ``call`` goes round-robin over the callers."""

    name = "postgres"

    def __init__(
        self, replicas: int, workers: int, callers: int, cpu_per_replica: float | None = None
    ) -> None:
        self.cluster = Cluster(replicas, cpu_per_replica)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.callers: list[Sustain] = []
        try:
            urls = [r.url for r in self.cluster.replicas]
            for i in range(workers):
                log = self.cluster.replicas[0].dir / f"worker-{i}.log"
                self.workers.append(_start_worker(urls[i % replicas], log))
            for i in range(callers):
                caller = Sustain(url=urls[i % replicas], group="callers")
                caller.start()
                self.callers.append(caller)
            self.cluster.wait_streams({GROUP: workers, "callers": callers})
            self.views = [c.options(target=GROUP) for c in self.callers]
            self._next = itertools.cycle(self.views)
        except BaseException:
            self.close()
            raise

    def warm_up(self, attempts: int = 6, wait: float = 5.0) -> None:
        # Every caller once (each has its own stream and connections), then as usual.
        for view in self.views:
            for attempt in range(attempts):
                handle = view.rpc(f"warm-{attempt}-{time.time_ns()}", "ping")
                with contextlib.suppress(TimeoutError):
                    if handle.result(timeout=wait) == "pong":
                        break
            else:
                raise RuntimeError("postgres: warm-up call never answered")

    def call(self, id: str, func: str, *args: Any) -> Handle[Any]:
        return next(self._next).rpc(id, func, *args)

    def promise(self, id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.callers[0].promises.get(id)
        return found

    def cpu_parts(self) -> dict[str, float]:
        return {
            "caller": self_cpu(),
            "server": self.cluster.server_cpu(),
            "worker": sum(pid_cpu(w.pid) for w in self.workers),
            "postgres": self.cluster.postgres_cpu(),
        }

    def close(self) -> None:
        try:
            for caller in self.callers:
                with contextlib.suppress(Exception):
                    caller.stop()
            for worker in self.workers:
                _stop(worker)
        finally:
            self.cluster.close()


# -- the runs -------------------------------------------------------------------------------
def _failed(row: Row, exc: BaseException) -> Row:
    return {**row, "errors": 1, "error": repr(exc), "trace": traceback.format_exc(limit=3)}


def _capped(cpu_per_replica: float | None) -> str:
    return f", {cpu_per_replica:g} core each" if cpu_per_replica else ""


def sdk_once(
    workload: str, size: int, replicas: int, spread: int, cpu_per_replica: float | None = None
) -> Row:
    """W1 or W2 of workflows.py on ``replicas`` replicas with ``spread`` workers/callers."""
    label = {"w1": "steps", "w2": "workflows"}[workload]
    case = f"{workload.upper()} {size:,} {label}, {replicas} replica{'s' * (replicas > 1)}"
    case += _capped(cpu_per_replica)
    if spread > 1:
        case += f", {spread} workers + {spread} callers"
    row: Row = {"workload": f"pg-{workload}", "case": case, "replicas": replicas,
                "workers": spread, "callers": spread,
                "cpu_per_replica": cpu_per_replica}  # fmt: skip
    try:
        mode = ClusterMode(replicas, spread, spread, cpu_per_replica)
        with mode:  # warms up; closes everything at the end
            throttled0 = mode.cluster.throttled_s()
            row.update(workflows.WORKLOADS[workload](mode, size))
            row["replicas_throttled_s"] = mode.cluster.throttled_s() - throttled0
    except Exception as exc:  # a failed run is a result line with errors, not a crash
        row = _failed(row, exc)
    return row


def s1_once(
    replicas: int,
    *,
    warmup: float,
    seconds: float,
    client: str,
    cpu_per_replica: float | None = None,
) -> Row:
    """S1's create+settle pairs from ``CLIENTS`` clients in ``GENERATORS`` processes,
    generator ``g`` on replica ``g mod replicas``."""
    row: Row = {"workload": "pg-s1", "case": f"{CLIENTS} clients, {replicas} replica"
                + "s" * (replicas > 1) + _capped(cpu_per_replica), "replicas": replicas,
                "clients": CLIENTS, "generators": GENERATORS, "client": client,
                "cpu_per_replica": cpu_per_replica}  # fmt: skip
    try:
        cluster = Cluster(replicas, cpu_per_replica)
    except Exception as exc:
        return _failed(row, exc)
    try:
        urls = [cluster.replicas[g % replicas].url for g in range(GENERATORS)]
        procs, start_at, end_at = throughput.launch(
            urls, CLIENTS, f"pg-s1-{replicas}", warmup=warmup, seconds=seconds, client=client
        )
        time.sleep(max(0.0, start_at - time.time()))
        cpu0, pg0, t0 = cluster.server_cpu(), cluster.postgres_cpu(), time.time()
        throttled0 = cluster.throttled_s()
        time.sleep(max(0.0, end_at - time.time()))
        server_cpu, pg_cpu = cluster.server_cpu() - cpu0, cluster.postgres_cpu() - pg0
        row["replicas_throttled_s"] = cluster.throttled_s() - throttled0
        elapsed = time.time() - t0
        results = throughput.collect(procs)
    except Exception as exc:
        return _failed(row, exc)
    finally:
        cluster.close()
    row.update(throughput.summary(results, seconds))
    ops = row["ops"]
    row["errors"] += int(ops == 0)  # a run that answered nothing failed
    row.update({
        # Shares of one core over the window, and CPU milliseconds per operation.
        "server_cpu": server_cpu / elapsed,
        "postgres_cpu": pg_cpu / elapsed,
        "server_cpu_ms_per_op": server_cpu * 1000 / ops if ops else None,
        "postgres_cpu_ms_per_op": pg_cpu * 1000 / ops if ops else None,
        "seconds": seconds,
    })  # fmt: skip
    return row


def runs(
    workload: str,
    quick: bool,
    repeat: int,
    client: str = "raw",
    cpu_per_replica: float | None = None,
) -> list[Row]:
    """The runs of ``pg`` or ``cluster``, ``repeat`` times, cases interleaved (a slow phase
    of the shared machine does not fall on one case only)."""
    w1_steps, w2_count = (QUICK_W1_STEPS, QUICK_W2_WORKFLOWS) if quick else (W1_STEPS, W2_WORKFLOWS)
    warmup, seconds = (0.5, 1.5) if quick else (1.0, 3.0)
    one_run: list[Callable[[], Row]] = []
    if workload == "pg":
        one_run = [lambda: sdk_once("w1", w1_steps, 1, 1), lambda: sdk_once("w2", w2_count, 1, 1)]
    else:
        one_run = [
            *(lambda n=n: s1_once(n, warmup=warmup, seconds=seconds, client=client,
                                  cpu_per_replica=cpu_per_replica) for n in REPLICAS),
            *(lambda n=n: sdk_once("w2", w2_count, n, SPREAD, cpu_per_replica)
              for n in REPLICAS),
        ]  # fmt: skip
    out = []
    for _ in range(repeat):
        for case in one_run:
            row = case()
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


# -- tables ---------------------------------------------------------------------------------


def _sdk_rows(rows: list[Row], workload: str) -> list[list[str]]:
    unit, key, digits = (
        ("step", "ms_per_step", 2) if workload == "pg-w1" else ("workflow", "workflows_per_s", 0)
    )
    out = []
    for case, runs in cases([r for r in rows if r["workload"] == workload]):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get(key), digits), span(runs, key, digits),
            fmt(m.get("seconds")), fmt(m.get(f"cpu_ms_per_{unit}"), 2),
            fmt(m.get(f"server_cpu_ms_per_{unit}"), 2),
            fmt(m.get(f"postgres_cpu_ms_per_{unit}"), 2),
            fmt(m.get(f"worker_cpu_ms_per_{unit}"), 2),
            fmt(m.get(f"caller_cpu_ms_per_{unit}"), 2), errors(runs),
        ])  # fmt: skip
    return out


def _cpu_headers(unit: str) -> list[str]:
    return [f"CPU ms/{unit}", "replicas", "postgres", "workers", "callers", "errors"]


def pg_table(rows: list[Row]) -> str:
    w1 = table(
        ["W1 on PostgreSQL", "runs", "ms/step (median)", "min-max", "total s",
         *_cpu_headers("step")], _sdk_rows(rows, "pg-w1"),
    )  # fmt: skip
    w2 = table(
        ["W2 on PostgreSQL", "runs", "workflows/s (median)", "min-max", "total s",
         *_cpu_headers("wf")], _sdk_rows(rows, "pg-w2"),
    )  # fmt: skip
    return (
        f"{w1}\n\n{w2}\n"
        "CPU ms per step / workflow of every process (total), then by kind: the replica, the\n"
        "PostgreSQL backends of the database, the worker, the caller (this process).\n"
        "Goal (issue 6): one replica on PostgreSQL >= 2x the official PostgreSQL implementation"
        "\nof the protocol on this machine: W1 <= 2.1 ms/step (official ~4.2), W2 >= 208"
        " workflows/s (official ~104)."
    )


def cluster_table(rows: list[Row]) -> str:
    s1 = []
    for case, runs in cases([r for r in rows if r["workload"] == "pg-s1"]):
        m = median_row(runs)
        s1.append([
            case, str(len(runs)), fmt(m.get("ops_per_s"), 0), span(runs, "ops_per_s"),
            fmt(m.get("lat_p50_ms")), fmt(m.get("lat_p99_ms")),
            f"{m['server_cpu']:.0%}" if "server_cpu" in m else "-",
            f"{m['postgres_cpu']:.0%}" if "postgres_cpu" in m else "-",
            f"{m['generator_cpu']:.0%}" if "generator_cpu" in m else "-",
            fmt(m.get("server_cpu_ms_per_op"), 3), fmt(m.get("postgres_cpu_ms_per_op"), 3),
            errors(runs),
        ])  # fmt: skip
    s1_headers = [
        "S1 create+settle on PostgreSQL", "runs", "ops/s (median)", "min-max", "p50 ms",
        "p99 ms", "replicas CPU", "postgres CPU", "loadgen CPU", "replicas CPU ms/op",
        "postgres CPU ms/op", "errors",
    ]  # fmt: skip
    w2 = table(
        ["W2 on a PostgreSQL cluster", "runs", "workflows/s (median)", "min-max", "total s",
         *_cpu_headers("wf")], _sdk_rows(rows, "pg-w2"),
    )  # fmt: skip
    return (
        f"{table(s1_headers, s1)}\n"
        f"S1: {CLIENTS} clients in {GENERATORS} generator processes, generator g on replica"
        " g mod N; CPU\nshares in % of one core (replicas summed), p50/p99 = per operation, max"
        " over the generators.\n\n"
        f"{w2}\n"
        f"W2: {SPREAD} worker processes and {SPREAD} callers in every case, number i on"
        " replica i mod N.\n"
        "Goal (issue 6): throughput that grows from 1 to 2 replicas (every replica and"
        " PostgreSQL\nshare this machine's CPUs).\n\n"
        f"{growth_table(rows)}"
    )


GROWTH_GOALS = {2: 1.8, 3: 2.5}  # issue 22: n replicas >= this x one replica


def growth(rows: list[Row], workload: str, key: str) -> dict[int, float]:
    """Median ``key`` of the passing runs of ``workload`` per replica count ÷ that of one
    replica."""
    by: dict[int, list[float]] = {}
    for row in rows:
        if row.get("workload") == workload and not row.get("errors") and row.get(key):
            by.setdefault(int(row["replicas"]), []).append(float(row[key]))
    if 1 not in by:
        return {}
    one = statistics.median(by[1])
    return {n: statistics.median(values) / one for n, values in sorted(by.items()) if n > 1}


def growth_table(rows: list[Row]) -> str:
    out = []
    for label, workload, key in (("S1 ops/s", "pg-s1", "ops_per_s"),
                                 ("W2 workflows/s", "pg-w2", "workflows_per_s")):  # fmt: skip
        for n, ratio in growth(rows, workload, key).items():
            goal = GROWTH_GOALS.get(n)
            out.append([
                label, f"{n} replicas ÷ 1", f"{ratio:.2f}x",
                f">= {goal:g}x" if goal else "-",
                "-" if goal is None else ("**yes**" if ratio >= goal else "no"),
            ])  # fmt: skip
    caps = {row.get("cpu_per_replica") for row in rows}
    cap = ", ".join("uncapped" if c is None else f"{c:g} core per replica" for c in caps)
    throttled = [float(r["replicas_throttled_s"]) for r in rows if r.get("replicas_throttled_s")]
    note = f"\nReplicas: {cap}; PostgreSQL, workers and load generators uncapped."
    if throttled:
        note += (
            f"\nTime the replicas were held back by their quota: median"
            f" {statistics.median(throttled):.2f} s per case (summed over replicas)."
        )
    headers = ["cluster growth (issue 22)", "replicas", "times one replica", "goal", "met?"]
    return table(headers, out) + note


TABLES: dict[str, Callable[[list[Row]], str]] = {"pg": pg_table, "cluster": cluster_table}
