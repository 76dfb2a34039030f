"""Issue 22's goal table: Sustain ÷ peer, **higher is better**, beside the goals.

For every workload the headline medians of the passing runs (``table.median_of`` over
``table.good_runs``) are turned into one "times better" figure: peer ÷ Sustain for times
(ms per step, seconds, lateness), Sustain ÷ peer for rates (workflows/s).  So 2.0 always
means "Sustain did twice as well", whatever the unit.

Rows: Sustain embedded and Sustain server against Restate on W1-W4, and Sustain on
PostgreSQL (one replica) against resonate-pg (Resonate's own PostgreSQL implementation) on
W1 and W2.  A pair with a side that was not measured (unavailable, every run failed) shows
``-`` and the reason, never a made-up number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks.peers.table import HEADLINES, good_runs, median_of
from benchmarks.peers.workloads import Row
from benchmarks.stats import table


@dataclass(frozen=True)
class Goal:
    workload: str
    sustain: str  # mode of the Sustain side
    peer: str  # mode of the peer
    at_least: float


GOALS = (
    Goal("w1", "embedded", "restate", 8.0),
    Goal("w1", "server", "restate", 3.0),
    Goal("w2", "embedded", "restate", 6.0),
    Goal("w2", "server", "restate", 4.0),
    Goal("w3", "embedded", "restate", 3.0),
    Goal("w3", "server", "restate", 2.0),
    Goal("w4", "embedded", "restate", 6.0),
    Goal("w4", "server", "restate", 4.0),
    Goal("w1", "postgres", "resonate-pg", 3.0),
    Goal("w2", "postgres", "resonate-pg", 3.0),
)

WHAT = {
    "w1": "W1 ms/step",
    "w2": "W2 workflows/s",
    "w3": "W3 200-child fan-out, s",
    "w4": "W4 sleep lateness p99 ms",
}


def times_better(workload: str, sustain: float | None, peer: float | None) -> float | None:
    """How many times better Sustain did than the peer (higher is better), or None."""
    if sustain is None or peer is None or sustain <= 0 or peer <= 0:
        return None
    lower_is_better = HEADLINES[workload].lower_is_better
    return peer / sustain if lower_is_better else sustain / peer


def _median(rows: Sequence[Row], workload: str, mode: str) -> float | None:
    runs = [r for r in rows if r.get("workload") == workload and r.get("mode") == mode]
    return median_of(good_runs(runs), HEADLINES[workload].key)


def goals_table(
    rows: Sequence[Row],
    names: Mapping[str, str],
    unavailable: Mapping[str, str],
    workloads: Sequence[str],
) -> str:
    out = []
    for goal in GOALS:
        if goal.workload not in workloads:
            continue
        head = HEADLINES[goal.workload]
        mine = _median(rows, goal.workload, goal.sustain)
        theirs = _median(rows, goal.workload, goal.peer)
        ratio = times_better(goal.workload, mine, theirs)
        if ratio is None:
            missing = [m for m in (goal.sustain, goal.peer) if m in unavailable]
            verdict = f"not measured ({missing[0]}: unavailable)" if missing else "not measured"
        else:
            verdict = "**yes**" if ratio >= goal.at_least else "no"
        out.append([
            WHAT[goal.workload],
            f"{names.get(goal.sustain, goal.sustain)} ÷ {names.get(goal.peer, goal.peer)}",
            "-" if mine is None else f"{mine:.{head.digits}f}",
            "-" if theirs is None else f"{theirs:.{head.digits}f}",
            "-" if ratio is None else f"{ratio:.2f}x",
            f">= {goal.at_least:g}x",
            verdict,
        ])  # fmt: skip
    headers = ["issue 22 goal", "pair", "Sustain", "peer", "times better", "goal", "met?"]
    return table(headers, out) + (
        "\ntimes better = peer ÷ Sustain for times, Sustain ÷ peer for workflows/s: higher"
        " is better\nfor Sustain; medians of the passing runs of this one run."
    )
