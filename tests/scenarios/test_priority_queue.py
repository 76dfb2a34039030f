"""Scenario 4 (SCENARIOS.md §4): a priority queue, two jobs at a time per tier.

The example runs as its own process: embedded (no server, its SQLite file in the test's
directory) for the order, overlap, wall-time and retry checks, then against a real ``sustain
serve`` with the jobs ten times longer (``QUEUE_SCALE``): that process is SIGKILLed once the
high tier is done and a ``sustain worker`` of the group finishes the run.  Every job appends
``pid start|end id attempt`` to ``QUEUE_LOG``, the side-effect counter that outlives a process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sustain.sdk import codec
from tests.scenarios.processes import (
    EXAMPLES,
    Proc,
    Store,
    scenario_server,
    sustain_worker,
    wait_until,
)

MAIN = str(EXAMPLES / "priority_queue" / "main.py")
ORDER = ["job-003", "job-007", "job-005", "job-008", "job-002", "job-006", "job-001", "job-004"]
TIER = {"job-003": 0, "job-007": 0, "job-005": 1, "job-008": 1,
        "job-002": 2, "job-006": 2, "job-001": 3, "job-004": 3}  # fmt: skip


def events(log: Path) -> list[tuple[int, str, str, int]]:
    if not log.exists():
        return []
    rows = (line.split() for line in log.read_text().splitlines())
    return [(int(pid), event, id, int(attempt)) for pid, event, id, attempt in rows]


def starts(log: Path, id: str) -> int:
    return sum(1 for _, event, job, _ in events(log) if event == "start" and job == id)


def embedded(tmp: Path, name: str, *args: str) -> tuple[dict[str, Any], Path]:
    log = tmp / f"{name}.jobs"
    cwd = tmp / name
    cwd.mkdir()
    proc = Proc([MAIN, *args], tmp / f"{name}.log", {"QUEUE_LOG": str(log)}, cwd=cwd)
    assert proc.wait(60) == 0, proc.output()
    assert (cwd / "sustain.db").exists()  # embedded: the store is a file of this process
    line = next(x for x in proc.output().splitlines() if x.startswith("result: "))
    result: dict[str, Any] = json.loads(line.removeprefix("result: "))
    return result, log


@pytest.mark.slow
def test_embedded_order_overlap_and_retry(tmp_path: Path) -> None:
    result, log = embedded(tmp_path, "happy")
    assert result["order"] == ORDER and result["completed"] == result["total"] == 8
    jobs = result["jobs"]
    # at most two jobs at any instant
    for job in jobs:
        at = job["start"] + 1e-4
        assert sum(1 for j in jobs if j["start"] <= at < j["end"]) <= 2
    # both jobs of a chunk really run together
    for first, second in zip(jobs[::2], jobs[1::2], strict=True):
        assert max(first["start"], second["start"]) < min(first["end"], second["end"])
    # no job of a tier starts before every job of the tiers above has ended
    for job in jobs:
        above = [j["end"] for j in jobs if TIER[j["id"]] < TIER[job["id"]]]
        assert all(end <= job["start"] for end in above), job
    # about the sum of the chunks' longest jobs (590 ms); a serial run is 1,120 ms of work
    assert max(j["end"] for j in jobs) - min(j["start"] for j in jobs) < 1.2
    assert all(job["attempt"] == 1 for job in jobs)
    assert all(starts(log, id) == 1 for id in ORDER)

    # job-006 fails its first attempt and is retried once; every other job runs once
    crashed, log = embedded(tmp_path, "crash", "--crash")
    assert crashed["order"] == ORDER
    attempts = {job["id"]: job["attempt"] for job in crashed["jobs"]}
    assert attempts == {id: 2 if id == "job-006" else 1 for id in ORDER}
    assert {id: starts(log, id) for id in ORDER} == attempts


@pytest.mark.slow
def test_remote_run_killed_after_the_high_tier_is_finished_by_another_worker(
    tmp_path: Path, store: Store
) -> None:
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    try:
        log = tmp_path / "remote.jobs"
        env = {"SUSTAIN_URL": server.url, "QUEUE_SCALE": "10", "QUEUE_TTL": "2",
               "QUEUE_LOG": str(log)}  # fmt: skip
        id = "queue/remote"
        first = Proc([MAIN, "--id", id], tmp_path / "first.log", env)
        # a job's body starts only once the steps before it are saved: job-002 starting
        # means both high-tier jobs are resolved in the store
        wait_until(lambda: starts(log, "job-002") == 1, 60, "the normal tier to start")
        for n in (3, 4):  # the high tier: the 3rd and 4th begin_run of the workflow
            assert server.ok("promise.get", {"id": f"{id}:{n}"})["promise"]["state"] == "resolved"
        first.kill9()
        worker = sustain_worker("examples.priority_queue.main:sustain", "queue",
                                tmp_path / "worker.log", env)  # fmt: skip
        wait_until(
            lambda: server.ok("promise.get", {"id": id})["promise"]["state"] != "pending",
            60, "the run to finish on the new worker",
        )  # fmt: skip
        ok, result = codec.outcome(server.ok("promise.get", {"id": id})["promise"])
        assert ok, result
        assert result["order"] == ORDER and result["completed"] == 8
        for job in ORDER[:4]:  # critical and high: done before the crash, never again
            assert starts(log, job) == 1, events(log)
        later = {pid for pid, event, job, _ in events(log) if job in ORDER[6:]}
        assert later == {worker.pid}  # the low tier ran on the new worker only
        worker.stop()
    finally:
        server.stop()
