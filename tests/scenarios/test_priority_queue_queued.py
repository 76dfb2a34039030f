"""Scenario 4 with a Sustain queue (examples/priority_queue/queued.py): the queue, not the
workflow, bounds and orders the jobs.

Embedded: the two jobs that find the queue empty start at once, the rest start in priority
order (FIFO within a tier), never more than two at once.  Against a real ``sustain serve``
(SQLite and PostgreSQL) with the jobs ten times longer: the process running the workflow and
serving the group is SIGKILLed while jobs run; a ``sustain worker`` of the group finishes:
the jobs the dead process held go out again once their lease lapses, a finished job never
runs again, and the queue's limit holds across both processes.
"""

from __future__ import annotations

import json
import time
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

MAIN = str(EXAMPLES / "priority_queue" / "queued.py")
FIRST_TWO = ["job-001", "job-002"]  # submitted first: the queue had room
BY_PRIORITY = ["job-003", "job-007", "job-005", "job-008", "job-006", "job-004"]
SUBMITTED = [f"job-00{n}" for n in range(1, 9)]  # the workflow's rpc n is SUBMITTED[n - 1]


def events(log: Path) -> list[tuple[int, str, str, float]]:
    if not log.exists():
        return []
    rows = (line.split() for line in log.read_text().splitlines())
    return [(int(pid), event, id, float(at)) for pid, event, id, at in rows]


def peak(evs: list[tuple[int, str, str, float]], alive_until: dict[int, float]) -> int:
    """Most jobs running at once; a start whose process died ends at ``alive_until``."""
    spans = []
    for pid, event, id, at in evs:
        if event != "start":
            continue
        end = next((t for p, e, j, t in evs if (p, e, j) == (pid, "end", id) and t >= at), None)
        spans.append((at, end if end is not None else alive_until[pid]))
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = most = 0
    for _, step in points:
        now += step
        most = max(most, now)
    return most


@pytest.mark.slow
def test_embedded_queue_orders_by_priority_two_at_a_time(tmp_path: Path) -> None:
    log = tmp_path / "jobs.log"
    proc = Proc([MAIN], tmp_path / "run.log", {"QUEUE_LOG": str(log)}, cwd=tmp_path)
    assert proc.wait(60) == 0, proc.output()
    line = next(x for x in proc.output().splitlines() if x.startswith("result: "))
    result: dict[str, Any] = json.loads(line.removeprefix("result: "))
    assert result["completed"] == 8
    assert sorted(result["order"][:2]) == FIRST_TWO and result["order"][2:] == BY_PRIORITY
    evs = events(log)
    assert peak(evs, {}) == 2
    assert sorted(id for _, e, id, _ in evs if e == "start") == sorted(FIRST_TWO + BY_PRIORITY)


@pytest.mark.slow
def test_remote_run_killed_mid_queue_is_finished_by_a_worker(tmp_path: Path, store: Store) -> None:
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    try:
        log = tmp_path / "remote.jobs"
        env = {"SUSTAIN_URL": server.url, "QUEUE_SCALE": "10", "QUEUE_TTL": "2",
               "QUEUE_LOG": str(log)}  # fmt: skip
        id = "queued/remote"
        first = Proc([MAIN, "--id", id], tmp_path / "first.log", env)
        ended = lambda: {j for _, e, j, _ in events(log) if e == "end"}  # noqa: E731
        wait_until(lambda: len(ended()) >= 3, 60, "three jobs to finish")
        first.kill9()
        killed_at = time.time()
        # finished before the crash: the job's promise was resolved (a job that logged its
        # end but died before its result was saved runs again, at least once semantics)
        done_before = {
            job for n, job in enumerate(SUBMITTED, 1)
            if server.ok("promise.get", {"id": f"{id}:{n}"})["promise"]["state"] == "resolved"
        }  # fmt: skip
        assert len(done_before) >= 2
        worker = sustain_worker("examples.priority_queue.queued:sustain", "queue",
                                tmp_path / "worker.log", env)  # fmt: skip
        wait_until(
            lambda: server.ok("promise.get", {"id": id})["promise"]["state"] != "pending",
            90, "the run to finish on the new worker",
        )  # fmt: skip
        ok, result = codec.outcome(server.ok("promise.get", {"id": id})["promise"])
        assert ok, result
        assert result["completed"] == 8
        evs = events(log)
        for job in done_before:  # finished before the crash: never again
            assert sum(1 for _, e, j, _ in evs if e == "start" and j == job) == 1, evs
        assert ended() == set(FIRST_TWO + BY_PRIORITY)
        # never more than two at once, the dead process's jobs counted until it died (their
        # slots stay taken until their lease lapses: the new worker waits for them)
        assert peak(evs, {first.pid: killed_at}) <= 2
        info = server.ok("sustain.queue.get", {"name": "jobs"})["queue"]
        assert (info["running"], info["waiting"]) == (0, 0)
        worker.stop()
    finally:
        server.stop()
