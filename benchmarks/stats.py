"""Percentiles, medians over runs, and the final plain-text table.

Each workload run produces a flat ``dict`` of numbers (one JSON line).  Runs of the same
workload and configuration share a ``case`` label; the summary takes, for every numeric
field, the median over the runs of a case (plus min-max for the headline metric), so one
noisy run on a shared 2-core machine does not decide the result.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

Row = dict[str, Any]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def median_row(runs: Sequence[Row]) -> Row:
    """Field-wise median of the numeric fields of ``runs`` (non-numeric: the first run's)."""
    out: Row = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
        if isinstance(first, int | float) and not isinstance(first, bool) and values:
            out[key] = statistics.median(values)
        else:
            out[key] = first
    return out


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable in a terminal and pasteable into the README)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    for row in rows:
        cells = (c.rjust(w) for c, w in zip(row, widths, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cases(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    """The runs grouped by their ``case`` label, in the order the cases first appear."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(str(row["case"]), []).append(row)
    return list(grouped.items())


def span(runs: Sequence[Row], key: str, digits: int = 0) -> str:
    """``min-max`` of ``key`` over the runs, or ``-`` with fewer than two values."""
    values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float)]
    if len(values) < 2:
        return "-"
    return f"{fmt(min(values), digits)}-{fmt(max(values), digits)}"


def errors(runs: Sequence[Row]) -> str:
    """The failed checks of all the runs, as a table cell."""
    return fmt(sum(int(r.get("errors") or 0) for r in runs))
