"""The peer benchmark's result checks and tables (benchmarks/peers), and its runner on Sustain
alone (no peer installed: ``make bench-peers`` itself is not part of the suite)."""

from __future__ import annotations

import json
import math

import pytest
from benchmarks.peers.__main__ import main
from benchmarks.peers.table import workload_table
from benchmarks.peers.workloads import to_row


def test_w1_w3_results_are_checked() -> None:
    assert to_row("w1", "p", 10, {"seconds": 0.5, "result": 10}, {})["errors"] == 0
    assert to_row("w1", "p", 10, {"seconds": 0.5, "result": 9}, {})["errors"] == 1
    assert to_row("w1", "p", 10, {"seconds": 0.5}, {})["errors"] == 1
    row = to_row("w3", "p", 5, {"seconds": 0.2, "result": 20}, {"caller": 0.1})
    assert row["errors"] == 0
    assert row["ms_per_child"] == pytest.approx(40.0)
    assert row["cpu_ms_per_child"] == pytest.approx(20.0)
    assert to_row("w3", "p", 5, {"seconds": 0.2, "result": 21}, {})["errors"] == 1


def test_w2_counts_every_wrong_or_missing_result() -> None:
    good = to_row("w2", "p", 4, {"seconds": 2.0, "results": [3, 4, 5, 6]}, {})
    assert (good["errors"], good["workflows_per_s"]) == (0, 2.0)
    assert to_row("w2", "p", 4, {"seconds": 2.0, "results": [3, 4, 0, 6]}, {})["errors"] == 1
    assert to_row("w2", "p", 4, {"seconds": 2.0, "results": [3, 4]}, {})["errors"] == 4
    assert to_row("w2", "p", 4, {"seconds": 2.0}, {})["errors"] == 4


def test_w4_lateness_and_early_wakes() -> None:
    wakes = [[100.0, 100.010], [100.0, 100.030], [200.0, 200.020]]
    row = to_row("w4", "p", 3, {"seconds": 1.1, "wakes": wakes}, {})
    assert row["errors"] == 0
    assert row["late_p50_ms"] == pytest.approx(20.0)
    assert row["late_p99_ms"] == pytest.approx(30.0)
    early = [[100.0, 99.9], [100.0, 100.001]]
    assert to_row("w4", "p", 3, {"seconds": 1.0, "wakes": early}, {})["errors"] == 2  # 1 missing
    nothing = to_row("w4", "p", 2, {"seconds": 1.0}, {})
    assert nothing["errors"] == 2
    assert math.isnan(nothing["late_p99_ms"])


def _w1(mode: str, ms: float, errors: int = 0) -> dict[str, object]:
    return {"workload": "w1", "mode": mode, "ms_per_step": ms, "seconds": ms, "errors": errors}


def test_table_medians_ratios_and_unavailable_peers() -> None:
    rows = [
        _w1("embedded", 1.0), _w1("embedded", 2.0), _w1("embedded", 3.0),
        _w1("server", 4.0), _w1("server", 4.0),
        _w1("peer", 8.0), _w1("peer", 0.001, errors=1),  # a wrong answer is not a result
    ]  # fmt: skip
    names = {"embedded": "Sustain embedded", "server": "Sustain server", "peer": "Peer",
             "gone": "Gone"}  # fmt: skip
    text = workload_table("w1", rows, names, {"gone": "npm not found"})
    lines = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
             for line in text.splitlines() if line.startswith("|")}  # fmt: skip
    assert lines["Peer"][:3] == ["1", "8.00", "-"]  # 1 good run, median 8 ms/step
    assert lines["Peer"][-3:] == ["0.25", "0.5", "1"]  # 2 / 8 and 4 / 8; 1 failed check
    assert lines["Sustain embedded"][:4] == ["3", "2.00", "1.00-3.00", "2.00"]
    assert lines["Sustain embedded"][-3:-1] == ["1", "2"]  # 2 / 2 and 4 / 2
    assert lines["Gone"][1] == "unavailable"
    assert "below 1 = Sustain faster" in text


def test_runner_on_sustain_alone(capsys: pytest.CaptureFixture[str]) -> None:
    """The command itself, with only Sustain's systems: installs nothing, reuses the
    Sustain workload code, checks the results and prints both rows with their ratios."""
    assert main(["w3", "--quick", "--systems", "embedded,server"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [(r["mode"], r["errors"]) for r in rows] == [("embedded", 0), ("server", 0)]
    assert all(r["children"] == 50 and r["seconds"] > 0 for r in rows)
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in out.splitlines()
             if line.startswith("|")]  # fmt: skip
    table = {row[0]: row[1:] for row in cells if row[0].startswith("Sustain")}
    assert set(table) == {"Sustain embedded (SQLite)", "Sustain server (SQLite)"}
    assert table["Sustain embedded (SQLite)"][-3] == "1"  # embedded ÷ itself
    assert table["Sustain server (SQLite)"][-2] == "1"
    assert "load average before" in out
