"""The pure helpers behind issue 22's benchmark tables (benchmarks/): the goal ratios, the
cluster growth, W1's growth with the length, the CPU quota, the profile's layers and the
big store's pre-load.  No timing is asserted: these check the arithmetic and the rows."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from benchmarks import bigstore, cluster, cpucap, stepprofile, workflows
from benchmarks.__main__ import _lengths
from benchmarks.peers.goals import goals_table, times_better


def test_times_better_is_higher_is_better_whatever_the_unit() -> None:
    assert times_better("w1", 0.25, 1.0) == pytest.approx(4.0)  # ms/step: peer ÷ Sustain
    assert times_better("w2", 1200.0, 400.0) == pytest.approx(3.0)  # workflows/s: Sustain ÷ peer
    assert times_better("w4", 20.0, 10.0) == pytest.approx(0.5)
    assert times_better("w1", None, 1.0) is None
    assert times_better("w1", 1.0, 0.0) is None


def _row(workload: str, mode: str, key: str, value: float, errors: int = 0) -> dict[str, object]:
    return {"workload": workload, "mode": mode, key: value, "errors": errors}


def test_goal_table_verdicts_and_unmeasured_peers() -> None:
    rows = [
        _row("w1", "embedded", "ms_per_step", 0.1), _row("w1", "server", "ms_per_step", 0.5),
        _row("w1", "restate", "ms_per_step", 1.0),
        _row("w1", "restate", "ms_per_step", 0.001, errors=1),  # a failed run is no result
        _row("w1", "postgres", "ms_per_step", 1.5),
    ]  # fmt: skip
    names = {"embedded": "E", "server": "S", "restate": "R", "postgres": "P"}
    text = goals_table(rows, names, {"resonate-pg": "not installable here"}, ["w1"])
    cells = [[c.strip() for c in line.split("|")[1:-1]] for line in text.splitlines()
             if line.startswith("|")]  # fmt: skip
    lines = {(row[0], row[1]): row[2:] for row in cells}
    assert lines[("W1 ms/step", "E ÷ R")] == ["0.10", "1.00", "10.00x", ">= 8x", "**yes**"]
    assert lines[("W1 ms/step", "S ÷ R")] == ["0.50", "1.00", "2.00x", ">= 3x", "no"]
    unmeasured = lines[("W1 ms/step", "P ÷ resonate-pg")]
    assert unmeasured[2] == "-"
    assert unmeasured[-1] == "not measured (resonate-pg: unavailable)"
    assert "W2" not in text  # only the workloads that ran


def test_cluster_growth_against_one_replica() -> None:
    rows = [
        {"workload": "pg-s1", "replicas": n, "ops_per_s": v, "errors": 0}
        for n, v in ((1, 1000.0), (1, 1200.0), (2, 2000.0), (3, 2750.0))
    ] + [{"workload": "pg-s1", "replicas": 3, "ops_per_s": 9e9, "errors": 1}]
    assert cluster.growth(rows, "pg-s1", "ops_per_s") == {
        2: pytest.approx(2000 / 1100),
        3: pytest.approx(2750 / 1100),
    }
    assert cluster.growth(rows, "pg-w2", "workflows_per_s") == {}
    text = cluster.growth_table([{**r, "cpu_per_replica": 0.3} for r in rows])
    assert "0.3 core per replica" in text
    assert "3 replicas ÷ 1" in text


def test_w1_growth_uses_the_shortest_and_longest_lengths() -> None:
    rows = [
        {"workload": "w1", "mode": "embedded", "steps": s, "ms_per_step": ms, "errors": 0}
        for s, ms in ((100, 0.30), (1000, 0.27), (10000, 0.33))
    ] + [{"workload": "w1", "mode": "server", "steps": 1000, "ms_per_step": 1.0, "errors": 0}]
    growth = workflows.w1_growth(rows)
    assert growth == {"embedded": (100, 10000, pytest.approx(1.1))}  # one length: no ratio
    assert workflows._sizes("w1", "server", False, (3000, 10000)) == [3000, 10000]
    assert workflows._sizes("w1", "embedded", False) == [100, 300, 1000]


def test_w1_lengths_option() -> None:
    assert _lengths("100, 3000,10000") == (100, 3000, 10000)
    for bad in ("", "0", "ten"):
        with pytest.raises(Exception, match="step counts"):
            _lengths(bad)


def test_cpu_quota() -> None:
    assert cpucap.quota_us(0.3) == 30_000
    assert cpucap.quota_us(2) == 200_000
    assert cpucap.quota_us(0.001) == 1000  # the kernel's minimum
    with pytest.raises(ValueError, match="positive"):
        cpucap.quota_us(0)


def test_profile_layers() -> None:
    loop = "LoopThread._main (/r/src/sustain/sdk/loop.py:37)"
    raw = "\n".join([
        f"thread (11): sustain-loop;{loop};EpollSelector.select (selectors.py:468) 5",
        f"thread (11): sustain-loop;{loop};run (/r/src/sustain/sdk/replay.py:9) 3",
        "thread (12): sustain-sqlite-writer:/tmp/x.db;_loop "
        "(/r/src/sustain/store/sqlite_writer.py:212) 4",
        f"thread (11): sustain-loop;{loop};enc (/r/src/sustain/sdk/replay.py:9);"
        "dumps (json/__init__.py:231) 2",
        "thread (13): MainThread;main (bench.py:3) 1",
        "garbage",
    ])  # fmt: skip
    layers, functions = stepprofile.parse_raw(raw)
    assert layers == {"hand-offs": 5, "sdk replay": 3, "store writer": 4, "codec": 2, "other": 1}
    assert functions[f"[sustain-loop] {loop} -> EpollSelector.select"] == 5
    names = stepprofile._thread_names(raw)
    assert names == {11: "sustain-loop", 12: "sustain-sqlite-writer:/tmp/x.db", 13: "MainThread"}


def test_bigstore_preload_writes_the_engine_s_rows(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    bigstore.preload(path, settled=30, pending=3, schedules=5)
    db = sqlite3.connect(path)
    try:
        count = dict(db.execute("SELECT state, count(*) FROM promises GROUP BY 1").fetchall())
        assert count == {"resolved": 30 + bigstore.TREE_NODES, "pending": 3}
        assert db.execute("SELECT count(*) FROM schedules").fetchone() == (5,)
        root, origin, target, tags = db.execute(
            "SELECT id, origin, target, tags FROM promises WHERE id = 'done-0000000'"
        ).fetchone()
        assert (origin, target) == (root, "poll://any@bench")
        assert json.loads(tags)["bench:batch"] == "b0"
        tree = db.execute("SELECT count(*) FROM promises WHERE origin = ?", (bigstore.TREE_ROOT,))
        assert tree.fetchone() == (bigstore.TREE_NODES,)
    finally:
        db.close()


def test_bigstore_verdicts() -> None:
    assert bigstore._met("within 1.3x", False, 1000.0, 800.0, "s1") == "**yes**"  # 1.25x worse
    assert bigstore._met("within 1.3x", False, 1000.0, 700.0, "s1") == "no"
    assert bigstore._met("within 1.3x", True, 10.0, 12.0, "p99") == "**yes**"
    assert bigstore._met("< 100 ms", True, None, 120.0, "ui") == "no"
    assert bigstore._met("< 2 s", True, 0.4, 1.5, "startup") == "**yes**"
    assert bigstore._met("", True, 1.0, 1.0, "rss") == "-"
