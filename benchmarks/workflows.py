"""The SDK workloads W1-W4: durable workflows end to end, embedded and in server mode.

Each run opens a fresh mode (``sdk_modes.py``: a new SQLite file; in server mode also a new
server and worker process), warms it up, times one workload, checks every result and
prints one JSON line.  A wrong result or an exception is a failed check (``errors``).

* **W1 sequential steps**: one workflow, ``n`` sequential ``x = yield ctx.run(step, x)``;
  ms per step = wall time of the whole call / n.  Embedded mode also runs 100 and 300 steps
  to show whether the cost per step grows with the length of the branch (every fenced
  create answers with the branch's promises as preload).
* **W2 many workflows**: ``n`` workflows of 3 steps, all started at once, then every result
  awaited; workflows/s.
* **W3 fan-out**: one workflow starts ``n`` leaf children at once (``begin_run``) and sums
  them; total seconds.
* **W4 durable sleep**: ``n`` workflows each ``ctx.sleep(1)`` then record the wall clock in
  a leaf step (``ctx.now()``).  lateness = that recorded time − the timer promise's
  ``timeoutAt`` (the intended wake time, fixed by the SDK at the sleep call).  (The timer's
  own ``settledAt`` is always its ``timeoutAt`` by the protocol, so it says nothing here.)
"""

from __future__ import annotations

import json
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

from benchmarks.sdk_modes import Mode, open_mode
from benchmarks.stats import percentile
from sustain.sdk import ids as ids_

MODES = ("embedded", "server")
RESULT_TIMEOUT = 300.0

Row = dict[str, Any]


def _cpu_total(parts: dict[str, float]) -> float:
    return sum(parts.values())


def _cpu_fields(before: dict[str, float], after: dict[str, float], per: int, unit: str) -> Row:
    """CPU ms per ``unit`` of every process of the mode, and the total."""
    row: Row = {}
    for key, seconds in after.items():
        row[f"{key}_cpu_ms_per_{unit}"] = (seconds - before[key]) * 1000 / per
    row[f"cpu_ms_per_{unit}"] = (_cpu_total(after) - _cpu_total(before)) * 1000 / per
    return row


def _uid(prefix: str) -> str:
    return f"{prefix}-{time.time_ns()}"


def w1(mode: Mode, steps: int) -> Row:
    cpu0, t0 = mode.cpu_parts(), time.perf_counter()
    result = mode.call(_uid("w1"), "chain", steps).result(timeout=RESULT_TIMEOUT)
    elapsed = time.perf_counter() - t0
    return {
        "steps": steps,
        "seconds": elapsed,
        "ms_per_step": elapsed * 1000 / steps,
        **_cpu_fields(cpu0, mode.cpu_parts(), steps, "step"),
        "errors": int(result != steps),
    }


def w2(mode: Mode, count: int) -> Row:
    prefix = _uid("w2")
    cpu0, t0 = mode.cpu_parts(), time.perf_counter()
    handles = [mode.call(f"{prefix}-{i}", "three", i) for i in range(count)]
    started = time.perf_counter() - t0
    results = [h.result(timeout=RESULT_TIMEOUT) for h in handles]
    elapsed = time.perf_counter() - t0
    return {
        "workflows": count,
        "seconds": elapsed,
        "start_s": started,
        "workflows_per_s": count / elapsed,
        **_cpu_fields(cpu0, mode.cpu_parts(), count, "workflow"),
        "errors": sum(r != i + 3 for i, r in enumerate(results)),
    }


def w3(mode: Mode, children: int) -> Row:
    cpu0, t0 = mode.cpu_parts(), time.perf_counter()
    result = mode.call(_uid("w3"), "fanout", children).result(timeout=RESULT_TIMEOUT)
    elapsed = time.perf_counter() - t0
    return {
        "children": children,
        "seconds": elapsed,
        "ms_per_child": elapsed * 1000 / children,
        **_cpu_fields(cpu0, mode.cpu_parts(), children, "child"),
        "errors": int(result != children * (children - 1)),
    }


def w4(mode: Mode, count: int, seconds: float = 1.0) -> Row:
    prefix = _uid("w4")
    ids = [f"{prefix}-{i}" for i in range(count)]
    t0 = time.perf_counter()
    handles = [mode.call(id, "nap", seconds) for id in ids]
    woke = [float(h.result(timeout=RESULT_TIMEOUT)) for h in handles]
    elapsed = time.perf_counter() - t0
    lateness = []
    errors = 0
    for id, at in zip(ids, woke, strict=True):
        timer = mode.promise(ids_.child(id, 1))  # the sleep: the first durable call
        if timer["state"] != "resolved" or timer.get("tags", {}).get("resonate:timer") != "true":
            errors += 1
            continue
        lateness.append(at * 1000 - timer["timeoutAt"])
    return {
        "workflows": count,
        "sleep_s": seconds,
        "seconds": elapsed,
        "late_p50_ms": percentile(lateness, 50),
        "late_p99_ms": percentile(lateness, 99),
        "late_max_ms": max(lateness, default=float("nan")),
        "late_min_ms": min(lateness, default=float("nan")),
        "errors": errors + sum(at * 1000 < 0 for at in woke),
    }


WORKLOADS: dict[str, Callable[..., Row]] = {"w1": w1, "w2": w2, "w3": w3, "w4": w4}


# ``--w1-steps 100,1000,3000,10000``: issue 22's long histories.  Every length in both
# modes, since a cost per step that grows with the history would show in either.
LONG_W1_STEPS = (100, 300, 1000, 3000, 10000)


def _sizes(
    workload: str, mode: str, quick: bool, w1_steps: tuple[int, ...] | None = None
) -> list[int]:
    """The counts of each case: small with ``--quick``; W1 embedded also at 100 and 300
    steps to see whether the cost per step grows with the branch; ``w1_steps`` (the
    ``--w1-steps`` option) replaces W1's lengths in both modes."""
    if workload == "w1":
        if w1_steps:
            return list(w1_steps)
        if quick:
            return [50]
        return [100, 300, 1000] if mode == "embedded" else [W1_SERVER_STEPS]
    full = {"w2": 1000, "w3": 200, "w4": 100}[workload]
    return [{"w2": 100, "w3": 50, "w4": 20}[workload] if quick else full]


# Server mode pays an HTTP round trip (two processes, shared CPUs) per durable operation;
# 1,000 steps there would exceed a minute per run on this 2-core machine (see README).
W1_SERVER_STEPS = 1000


def w1_growth(rows: list[Row], key: str = "ms_per_step") -> dict[str, tuple[int, int, float]]:
    """Per mode, (shortest, longest, ``key`` at the longest ÷ ``key`` at the shortest) of
    the passing W1 runs (medians per length): issue 22 wants ~1, a cost per step that does
    not grow with the history.  ``key="cpu_ms_per_step"`` gives the same for CPU, which the
    load of a shared machine moves less than wall time."""
    by: dict[str, dict[int, list[float]]] = {}
    for row in rows:
        if row.get("workload") == "w1" and not row.get("errors") and key in row:
            by.setdefault(str(row["mode"]), {}).setdefault(int(row["steps"]), []).append(
                float(row[key])
            )
    out = {}
    for mode, lengths in by.items():
        if len(lengths) > 1:
            lo, hi = min(lengths), max(lengths)
            out[mode] = (lo, hi, statistics.median(lengths[hi]) / statistics.median(lengths[lo]))
    return out


def run_once(workload: str, mode_name: str, size: int) -> Row:
    label = {"w1": "steps", "w2": "workflows", "w3": "children", "w4": "workflows"}[workload]
    row: Row = {"workload": workload, "case": f"{mode_name} {size:,} {label}", "mode": mode_name}
    try:
        with open_mode(mode_name) as mode:
            row.update(WORKLOADS[workload](mode, size))
    except Exception as exc:  # a failed run is a result line with errors, not a crash
        row.update({"errors": 1, "error": repr(exc), "trace": traceback.format_exc(limit=3)})
    return row


def runs(
    workload: str,
    quick: bool,
    repeat: int,
    modes: tuple[str, ...] = MODES,
    w1_steps: tuple[int, ...] | None = None,
) -> list[Row]:
    out = []
    for _ in range(repeat):
        for mode_name in modes:
            for size in _sizes(workload, mode_name, quick, w1_steps):
                row = run_once(workload, mode_name, size)
                print(json.dumps(row), flush=True)
                out.append(row)
    return out
