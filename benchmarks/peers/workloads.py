"""The issue's workloads W1-W4 as the peers run them: sizes, and the check of their results.

A peer run returns *raw* results (``dbos_app.py`` prints them; ``restate_peer.py`` collects
from the ingress): the wall seconds of the timed part, the workflows' return values and the
CPU seconds of the peer's processes.  ``to_row`` checks every value against what the
workload must return and builds the JSON row in the shape of the Sustain rows
(``benchmarks/workflows.py``: the same field names), so a fast wrong answer counts in
``errors`` and fails the command.

* W1: one workflow of ``n`` sequential durable steps ``x + 1``: must return ``n``.
* W2: ``n`` workflows of 3 such steps, workflow ``i`` started with ``i``: must return
  ``i + 3``.
* W3: one workflow starting ``n`` children ``2 * i`` at once and summing them:
  ``n * (n - 1)``.
* W4: ``n`` workflows each sleeping 1 s, returning ``[intended, woke]``: the wall clock
  just before the sleep call + 1 s, and the wall clock recorded by the first durable step
  after the sleep.  After the timed part each peer replaces ``intended`` by the deadline it
  recorded for that sleep (DBOS: the ``DBOS.sleep`` step's output; Restate: the journaled
  sleep command's ``wake_up_time``), the analogue of Sustain's ``timeoutAt``.  lateness =
  woke - intended; no deadline, or a wake-up more than ``EARLY_TOLERANCE_S`` before it (the
  sleep did not sleep), is an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from benchmarks.stats import percentile

Row = dict[str, Any]

WORKLOADS = ("w1", "w2", "w3", "w4")
SIZES = {"w1": 1000, "w2": 1000, "w3": 200, "w4": 100}
QUICK_SIZES = {"w1": 50, "w2": 100, "w3": 50, "w4": 20}
UNIT = {"w1": "step", "w2": "workflow", "w3": "child", "w4": "workflow"}
LABEL = {"w1": "steps", "w2": "workflows", "w3": "children", "w4": "workflows"}
SLEEP_S = 1.0
# Deadlines are kept in whole milliseconds by some systems: waking up to 2 ms before the
# recorded deadline is rounding, not a bug.
EARLY_TOLERANCE_S = 0.002


def size_of(workload: str, quick: bool) -> int:
    return (QUICK_SIZES if quick else SIZES)[workload]


def case(mode: str, workload: str, size: int) -> str:
    return f"{mode} {size:,} {LABEL[workload]}"


def _int_errors(values: Any, expected: list[int]) -> int:
    if not isinstance(values, list) or len(values) != len(expected):
        return len(expected)
    return sum(value != want for value, want in zip(values, expected, strict=True))


def to_row(
    workload: str, mode: str, size: int, raw: Mapping[str, Any], cpu: Mapping[str, float]
) -> Row:
    """The checked JSON row of one peer run.  ``cpu``: CPU seconds per process of the peer
    during the timed part (e.g. ``{"server": ..., "worker": ..., "caller": ...}``)."""
    seconds = float(raw["seconds"])
    unit = UNIT[workload]
    row: Row = {"workload": workload, "case": case(mode, workload, size), "mode": mode}
    if workload == "w1":
        row.update({"steps": size, "seconds": seconds, "ms_per_step": seconds * 1000 / size})
        row["errors"] = int(raw.get("result") != size)
    elif workload == "w2":
        row.update({"workflows": size, "seconds": seconds, "workflows_per_s": size / seconds})
        row["errors"] = _int_errors(raw.get("results"), [i + 3 for i in range(size)])
    elif workload == "w3":
        row.update({"children": size, "seconds": seconds, "ms_per_child": seconds * 1000 / size})
        row["errors"] = int(raw.get("result") != size * (size - 1))
    elif workload == "w4":
        row.update(_w4_fields(size, seconds, raw.get("wakes")))
    else:
        raise ValueError(f"unknown workload {workload!r}")
    per = size
    for key, spent in cpu.items():
        row[f"{key}_cpu_ms_per_{unit}"] = spent * 1000 / per
    row[f"cpu_ms_per_{unit}"] = sum(cpu.values()) * 1000 / per
    return row


def _w4_fields(size: int, seconds: float, wakes: Any) -> Row:
    lateness: list[float] = []
    errors = 0
    pairs = wakes if isinstance(wakes, list) else []
    errors += abs(size - len(pairs))
    for pair in pairs:
        try:
            intended, woke = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            errors += 1
            continue
        if not (math.isfinite(intended) and math.isfinite(woke)):
            errors += 1
        elif woke < intended - EARLY_TOLERANCE_S:
            errors += 1  # woke before its deadline: the sleep did not sleep
        else:
            lateness.append((woke - intended) * 1000)
    return {
        "workflows": size,
        "sleep_s": SLEEP_S,
        "seconds": seconds,
        "late_p50_ms": percentile(lateness, 50),
        "late_p99_ms": percentile(lateness, 99),
        "late_max_ms": max(lateness, default=math.nan),
        "late_min_ms": min(lateness, default=math.nan),
        "errors": errors,
    }


def failed_row(workload: str, mode: str, size: int, error: str) -> Row:
    """A run that raised: a result line with one error, not a crash of the command."""
    return {
        "workload": workload,
        "case": case(mode, workload, size),
        "mode": mode,
        "errors": 1,
        "error": error,
    }
