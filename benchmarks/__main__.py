"""``python -m benchmarks [s1|timers|rss|w1|w2|w3|w4|ui|pg|cluster ...] [--quick] [--runs N]``:
run and summarise (``sdk`` = w1 w2 w3 w4, the SDK workloads of workflows.py; ``ui``: the web
UI's pages over 10,000 executions, ui.py; ``pg`` / ``cluster``: W1, W2 and S1 on PostgreSQL
with 1-3 replicas, cluster.py).

Prints one JSON line per run (machine-readable, e.g. ``| grep '^{'``), then one Markdown
table per workload with the median of every number over the runs, the machine's load
average before and after, and the date.  Exits 1 if any run saw a failed check (a non-200
answer, an unblock in the wrong state): a fast wrong answer is not a result.  Speed itself
is never asserted; the goals of the issue are printed next to the medians for comparison.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import sys
from collections.abc import Callable

from benchmarks import (
    bigstore,
    cluster,
    queues,
    recovery,
    rss,
    throughput,
    timers,
    ui,
    workflows,
)
from benchmarks.harness import strace_available
from benchmarks.stats import Row, cases, errors, fmt, median_row, span, table

WORKLOADS = (
    "s1", "timers", "rss", "w1", "w2", "w3", "w4", "ui", *cluster.WORKLOADS, "bigstore",
    "recovery", "queues",
)  # fmt: skip
SDK = ("w1", "w2", "w3", "w4")


def _s1_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m["ops_per_s"], 0), span(runs, "ops_per_s"),
            fmt(m["fsyncs_per_op"], 3), fmt(m["lat_p50_ms"]), fmt(m["lat_p99_ms"]),
            f"{m['server_cpu']:.0%}", fmt(m["server_cpu_ms_per_op"], 3),
            f"{m['server_runqueue_wait']:.0%}", f"{m['generator_cpu']:.0%}",
            fmt(sum(r["errors"] for r in runs)),
        ])  # fmt: skip
    headers = [
        "S1 create+settle", "runs", "ops/s (median)", "min-max", "fsyncs/op",
        "p50 ms", "p99 ms", "server CPU", "CPU ms/op", "runq wait", "loadgen CPU",
        "errors",
    ]  # fmt: skip
    return table(headers, out) + "\nGoal: >= 5,000 ops/s at 64 clients (synchronous=FULL)."


def _timers_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("p50_ms")), fmt(m.get("p99_ms")),
            span(runs, "p99_ms", 1), fmt(m.get("max_ms")), fmt(m.get("missing")),
            fmt(sum(r["errors"] for r in runs)),
        ])  # fmt: skip
    headers = [
        "Timer lateness", "runs", "p50 ms", "p99 ms (median)", "p99 min-max", "max ms",
        "missing", "errors",
    ]  # fmt: skip
    note = (
        "\nmissing = unblocks not received 5 s after the last deadline (counted as inf)."
        "\nGoal: p99 <= 20 ms with 1,000 timers due in the same second."
    )
    return table(headers, out) + note


def _rss_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("rss_mb")), span(runs, "rss_mb", 1),
            fmt(m.get("peak_rss_mb")), fmt(m.get("idle_rss_mb")),
            fmt(m.get("bytes_per_promise"), 0),
            fmt(m.get("db_mb")), fmt(m.get("creates_per_s"), 0),
            fmt(sum(r["errors"] for r in runs)),
        ])  # fmt: skip
    headers = [
        "Server RSS", "runs", "RSS MB (median)", "min-max", "peak MB", "idle MB",
        "B/promise", "db MB", "creates/s", "errors",
    ]  # fmt: skip
    return table(headers, out) + "\nGoal: < 200 MB with 100,000 pending promises."


def _w1_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("ms_per_step"), 2), span(runs, "ms_per_step", 2),
            fmt(m.get("seconds")), fmt(m.get("cpu_ms_per_step"), 2),
            fmt(m.get("server_cpu_ms_per_step"), 2), fmt(m.get("worker_cpu_ms_per_step"), 2),
            errors(runs),
        ])  # fmt: skip
    headers = [
        "W1 sequential steps", "runs", "ms/step (median)", "min-max", "total s",
        "CPU ms/step", "server CPU", "worker CPU", "errors",
    ]  # fmt: skip
    cpu = workflows.w1_growth(rows, "cpu_ms_per_step")
    growth = "".join(
        f"\n{mode}: ms/step at {hi:,} steps ÷ at {lo:,} = {ratio:.2f}"
        + (f" (CPU ms/step: {cpu[mode][2]:.2f})" if mode in cpu else "")
        for mode, (lo, hi, ratio) in workflows.w1_growth(rows).items()
    )
    return table(headers, out) + (
        "\nCPU ms/step: every process of the mode (embedded: this one; server: caller +"
        " server + worker).\nGoal (SDK issue): embedded <= 0.5 ms/step, server <= 2 ms/step."
        "\nGoal (issue 22): ms/step does not grow with the length (ratio ~1)." + growth
    )


def _w2_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("workflows_per_s"), 0),
            span(runs, "workflows_per_s"), fmt(m.get("seconds")),
            fmt(m.get("cpu_ms_per_workflow"), 2), fmt(m.get("server_cpu_ms_per_workflow"), 2),
            fmt(m.get("worker_cpu_ms_per_workflow"), 2), errors(runs),
        ])  # fmt: skip
    headers = [
        "W2 3-step workflows", "runs", "workflows/s (median)", "min-max", "total s",
        "CPU ms/wf", "server CPU", "worker CPU", "errors",
    ]  # fmt: skip
    return table(headers, out)


def _w3_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("seconds"), 2), span(runs, "seconds", 2),
            fmt(m.get("ms_per_child"), 2), fmt(m.get("cpu_ms_per_child"), 2),
            fmt(m.get("server_cpu_ms_per_child"), 2), fmt(m.get("worker_cpu_ms_per_child"), 2),
            errors(runs),
        ])  # fmt: skip
    headers = [
        "W3 fan-out", "runs", "total s (median)", "min-max", "ms/child", "CPU ms/child",
        "server CPU", "worker CPU", "errors",
    ]  # fmt: skip
    return table(headers, out)


def _w4_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("seconds"), 2), fmt(m.get("late_p50_ms")),
            fmt(m.get("late_p99_ms")), span(runs, "late_p99_ms", 1),
            fmt(m.get("late_max_ms")), errors(runs),
        ])  # fmt: skip
    headers = [
        "W4 sleep(1)", "runs", "total s", "late p50 ms", "late p99 ms (median)", "p99 min-max",
        "max ms", "errors",
    ]  # fmt: skip
    return table(headers, out) + (
        "\nlateness = wall clock recorded by the first step after the sleep - the timer's"
        " timeoutAt."
    )


def _ui_table(rows: list[Row]) -> str:
    out = []
    for case, runs in cases(rows):
        m = median_row(runs)
        out.append([
            case, str(len(runs)), fmt(m.get("server_ms_median"), 2), fmt(m.get("server_ms_p90"), 2),
            fmt(m.get("wall_ms_median"), 2), fmt(m.get("kb")), fmt(m.get("executions")),
            errors(runs),
        ])  # fmt: skip
    headers = [
        "UI page", "runs", "server ms (median)", "server p90 ms", "wall ms", "KB",
        "executions", "errors",
    ]  # fmt: skip
    return table(headers, out) + (
        "\nserver ms: the Server-Timing header (query + HTML, no network)."
        "\nGoal: the executions page's first page over 10,000 executions in < 200 ms."
    )


TABLES: dict[str, Callable[[list[Row]], str]] = {
    "s1": _s1_table,
    "timers": _timers_table,
    "rss": _rss_table,
    "w1": _w1_table,
    "w2": _w2_table,
    "w3": _w3_table,
    "w4": _w4_table,
    "ui": _ui_table,
    **cluster.TABLES,
    "bigstore": bigstore.bigstore_table,
    "recovery": recovery.recovery_table,
    "queues": queues.queues_table,
}


def _lengths(text: str) -> tuple[int, ...]:
    try:
        lengths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of step counts: {text!r}") from None
    if not lengths or min(lengths) < 1:
        raise argparse.ArgumentTypeError(f"not a list of step counts: {text!r}")
    return lengths


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("workloads", nargs="*", metavar="WORKLOAD",
                        help=f"any of {', '.join(WORKLOADS)}, or sdk = w1-w4 "
                        "(default: all)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 short run each")
    parser.add_argument(
        "--runs",
        type=int,
        default=None,
        help="runs per case (default 3; rss and w1: 1, a run takes minutes / ~1 min)",
    )
    parser.add_argument("--generators", type=int, default=1,
                        help="load-generator processes for s1 and rss (default 1)")  # fmt: skip
    parser.add_argument("--client", choices=("raw", "aiohttp"), default="raw",
                        help="HTTP client of the load generators (default raw: see "
                        "benchmarks/rawhttp.py)")  # fmt: skip
    parser.add_argument("--w1-steps", type=_lengths, default=None, metavar="N,N,...",
                        help="W1's lengths in both modes, e.g. 100,1000,3000,10000 (issue 22's "
                        "long histories; default 100,300,1000 embedded, 1000 server)")  # fmt: skip
    parser.add_argument("--cpu-per-replica", type=float, default=None, metavar="CORES",
                        help="cluster: cap every replica at CORES cores (e.g. 0.3) with a cgroup "
                        "of its own, so the replicas, not the machine, are the bottleneck "
                        "(root; PostgreSQL and load generators uncapped)")  # fmt: skip
    parser.add_argument("--promises", type=int, default=None, metavar="N",
                        help="bigstore: settled promises to pre-load (default 1,000,000; "
                        "--quick 10,000); pending = N / 10")  # fmt: skip
    parser.add_argument("--bigstore-backends", type=lambda t: tuple(t.split(",")),
                        default=bigstore.BACKENDS, metavar="sqlite,postgres",
                        help="bigstore: the stores to pre-load (default both)")  # fmt: skip
    parser.add_argument("--no-strace", action="store_true", help="do not count fsyncs")
    parser.add_argument("--nice", type=int, default=None,
                        help="scheduling niceness for this process, the servers and the load "
                        "generators (e.g. -10 as root: less noise from other work on a shared "
                        "machine)")  # fmt: skip
    args = parser.parse_args(argv)
    named = [w.lower() for w in args.workloads] or list(WORKLOADS)
    chosen = [w for name in named for w in (SDK if name == "sdk" else (name,))]
    unknown = sorted(set(chosen) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {WORKLOADS}")
    repeat = args.runs or (1 if args.quick else 3)
    trace = not args.no_strace and strace_available()

    # SIGTERM (a CI timeout, `kill`) must still run the `finally` blocks that stop servers.
    signal.signal(signal.SIGTERM, _terminate)
    if args.nice is not None:
        # Inherited by every child process (servers, generators): set once, here.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    results: dict[str, list[Row]] = {}
    for name in chosen:
        if name == "s1":
            results[name] = throughput.runs(args.quick, repeat, args.generators, trace, args.client)
        elif name == "timers":
            results[name] = timers.runs(args.quick, repeat)
        elif name == "w1":
            # ~1 min per run (1,000 steps in each mode plus 100/300 embedded): 1 by default.
            results[name] = workflows.runs(name, args.quick, args.runs or 1, w1_steps=args.w1_steps)
        elif name in SDK:
            results[name] = workflows.runs(name, args.quick, repeat)
        elif name == "ui":
            results[name] = ui.runs(args.quick, args.runs or 1)
        elif name == "bigstore":
            # Minutes per run at 1,000,000 promises (pre-load, two stores): 1 by default.
            results[name] = bigstore.runs(
                args.quick, args.runs or 1, args.promises, args.bigstore_backends
            )
        elif name == "recovery":
            # A few seconds per run: 5 by default, so the median is not one restart's luck.
            results[name] = recovery.runs(args.quick, args.runs or (1 if args.quick else 5))
        elif name == "queues":
            # W2 twice and a slot-latency run per repeat: 1 by default.
            results[name] = queues.runs(args.quick, args.runs or 1)
        elif name in cluster.WORKLOADS:
            # PostgreSQL (issue 6): each run on its own database and replicas, cluster.py.
            results[name] = cluster.runs(
                name, args.quick, repeat, args.client, args.cpu_per_replica
            )
        else:
            results[name] = rss.runs(args.quick, args.runs or 1, args.generators, args.client)
    load_after = os.getloadavg()

    print()
    print(f"Sustain benchmarks, {started:%Y-%m-%d %H:%M} UTC, {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average before {load_before[0]:.2f} "
          f"after {load_after[0]:.2f} (1 min); load-generator client {args.client}; "
          "medians over the runs"
          f"{' [--quick]' if args.quick else ''}"
          f"{f' [--nice {args.nice}]' if args.nice is not None else ''}.")  # fmt: skip
    if "s1" in chosen and not trace:
        print("fsyncs not counted (strace missing or --no-strace).")
    for name in chosen:
        print()
        print(TABLES[name](results[name]))
    failed = sum(int(r.get("errors") or 0) for rows in results.values() for r in rows)
    if failed:
        print(f"\n{failed} failed check(s): see the JSON lines above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
