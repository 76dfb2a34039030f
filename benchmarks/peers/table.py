"""The side-by-side tables: one per workload, one line per system, medians over the runs,
and Sustain ÷ peer ratios.

Only runs without a failed check count in a median (a fast wrong answer is not a result);
their number is the ``runs`` column and the failed ones are in ``errors``.  The ratios are
Sustain's median headline ÷ that system's median headline, for Sustain embedded and for
Sustain server: for times (ms per step, seconds, lateness) a ratio below 1 means Sustain is
faster, for rates (workflows/s) above 1.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.peers.workloads import UNIT, Row
from benchmarks.stats import fmt, span, table

SUSTAIN = ("embedded", "server")


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    digits: int
    lower_is_better: bool


HEADLINES = {
    "w1": Headline("ms_per_step", "ms/step", 2, True),
    "w2": Headline("workflows_per_s", "workflows/s", 0, False),
    "w3": Headline("seconds", "total s", 3, True),
    "w4": Headline("late_p99_ms", "late p99 ms", 1, True),
}
TITLES = {
    "w1": "W1 sequential steps",
    "w2": "W2 3-step workflows",
    "w3": "W3 fan-out",
    "w4": "W4 sleep(1)",
}
# Secondary columns: (row key, header, digits).
EXTRAS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "w1": (("seconds", "total s", 2),),
    "w2": (("seconds", "total s", 2),),
    "w3": (("ms_per_child", "ms/child", 2),),
    "w4": (("seconds", "total s", 2), ("late_p50_ms", "late p50 ms", 1),
           ("late_max_ms", "late max ms", 1)),
}  # fmt: skip


def good_runs(runs: Sequence[Row]) -> list[Row]:
    return [r for r in runs if not r.get("errors")]


def median_of(runs: Sequence[Row], key: str) -> float | None:
    values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else None


def ratio(sustain: float | None, peer: float | None) -> str:
    if sustain is None or peer is None or peer == 0:
        return "-"
    return f"{sustain / peer:.3g}"


def workload_table(
    workload: str,
    rows: Sequence[Row],
    names: Mapping[str, str],
    unavailable: Mapping[str, str] | None = None,
) -> str:
    """The table of one workload; ``names``: mode -> display name, in display order."""
    unavailable = unavailable or {}
    head = HEADLINES[workload]
    unit = UNIT[workload]
    by_mode: dict[str, list[Row]] = {mode: [] for mode in names}
    for row in rows:
        if row.get("workload") == workload and row.get("mode") in by_mode:
            by_mode[str(row["mode"])].append(row)
    sustain = {m: median_of(good_runs(by_mode.get(m, [])), head.key) for m in SUSTAIN}
    out = []
    for mode, name in names.items():
        runs = by_mode[mode]
        if not runs:
            if mode in unavailable:
                out.append([name, "0", "unavailable", *["-"] * (len(EXTRAS[workload]) + 5)])
            continue
        good = good_runs(runs)
        value = median_of(good, head.key)
        out.append([
            name, str(len(good)), fmt(value, head.digits), span(good, head.key, head.digits),
            *(fmt(median_of(good, key), digits) for key, _, digits in EXTRAS[workload]),
            fmt(median_of(good, f"cpu_ms_per_{unit}"), 2),
            ratio(sustain["embedded"], value), ratio(sustain["server"], value),
            fmt(sum(int(r.get("errors") or 0) for r in runs)),
        ])  # fmt: skip
    headers = [
        TITLES[workload], "runs", f"{head.label} (median)", "min-max",
        *(label for _, label, _ in EXTRAS[workload]), f"CPU ms/{unit}",
        "embedded ÷ it", "server ÷ it", "errors",
    ]  # fmt: skip
    better = "below" if head.lower_is_better else "above"
    note = (
        f'\n"embedded ÷ it" / "server ÷ it": Sustain\'s median {head.label} ÷ this system\'s;'
        f" {better} 1 = Sustain faster."
    )
    return table(headers, out) + note
