"""Scenario 2 (SCENARIOS.md §2): a cron schedule created once, its ticks run by workers.

Real ``sustain serve`` (SQLite file), the example's one-shot ``create`` script and ``sustain
worker examples.schedule.app:sustain`` processes.  The cron ticks every 2 s (a 6-field cron
given through ``REPORT_CRON``), the lease is 2 s (``REPORT_TTL``); every run of the report
appends ``pid promise-id`` to ``REPORT_LOG``.  In order: create (twice), ticks executed once
each, a worker SIGKILLed mid-report and the same tick finished by another, a tick fired while
no worker runs, a server restart, and the deletion.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from sustain.sdk import codec
from sustain.testing import SustainEnv
from tests.scenarios.processes import (
    SUSTAIN,
    Proc,
    Store,
    scenario_server,
    sustain_worker,
    wait_until,
)
from tests.servers import ServerProcess

APP = "examples.schedule.app:sustain"
CRON = "*/2 * * * * *"
PERIOD = 2.0


def ticks(server: ServerProcess) -> dict[str, dict[str, Any]]:
    data = server.ok(
        "promise.search", {"tags": {"resonate:schedule": "daily_report"}, "limit": 1000}
    )
    return {p["id"]: p for p in data["promises"]}


def resolved(server: ServerProcess) -> dict[str, dict[str, Any]]:
    return {id: p for id, p in ticks(server).items() if p["state"] == "resolved"}


def runs(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(a), b) for a, b in (line.split() for line in log.read_text().splitlines())]


def cli(tmp: Path, server: ServerProcess, *args: str) -> str:
    proc = Proc([SUSTAIN, "-S", server.url, *args], tmp / f"cli-{time.monotonic_ns()}.log")
    assert proc.wait(60) == 0, proc.output()
    return proc.output()


@pytest.mark.slow
def test_schedule_ticks_survive_crashes_downtime_and_a_server_restart(
    tmp_path: Path, store: Store
) -> None:
    # a tick fired while no worker listens is re-sent after the retry timeout
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    log = tmp_path / "runs.log"
    env = {"SUSTAIN_URL": server.url, "REPORT_CRON": CRON, "REPORT_TTL": "2",
           "REPORT_LOG": str(log)}  # fmt: skip
    try:
        # 1. create, then create again: the second run gets the same schedule, unchanged
        outputs = []
        for i in range(2):
            create = Proc(["-m", "examples.schedule.create"], tmp_path / f"create-{i}.log", env)
            assert create.wait(60) == 0, create.output()
            # The script registers the app's functions, so while it runs it is a worker of
            # the group too and may run a tick itself: only its own line is compared.
            outputs.append(next(line for line in create.output().splitlines()
                                if line.startswith("schedule daily_report")))  # fmt: skip
        assert outputs[0] == outputs[1] and f"cron {CRON!r}, created at" in outputs[0]
        schedule = json.loads(cli(tmp_path, server, "schedules", "get", "daily_report", "--json"))
        schedule = schedule.get("schedule", schedule)
        assert schedule["cron"] == CRON and "{{.timestamp}}" in schedule["promiseId"]

        # 2. one worker: ticks resolve with the report, each executed once
        a = sustain_worker(APP, "reports", tmp_path / "a.log", env)
        wait_until(lambda: len(resolved(server)) >= 2, 30, "two resolved ticks")
        done = resolved(server)
        stamps = {int(id.rsplit(".", 1)[1]) for id in done}
        assert len(stamps) == len(done) and all(id.startswith("daily_report.") for id in done)
        for record in done.values():
            ok, value = codec.outcome(record)
            assert ok and "Report for user 123" in value
        assert sorted(id for _, id in runs(log) if id in done) == sorted(done)

        # 3. crash: a worker blocked in a report is SIGKILLed; another runs that same tick
        a.stop()
        slow = sustain_worker(APP, "reports", tmp_path / "slow.log", {**env, "REPORT_BLOCK": "600"})
        wait_until(lambda: any(pid == slow.pid for pid, _ in runs(log)), 30, "a blocked report")
        victim = next(id for pid, id in runs(log) if pid == slow.pid)
        slow.kill9()
        b = sustain_worker(APP, "reports", tmp_path / "b.log", env)
        wait_until(lambda: victim in resolved(server), 30, f"{victim} to resolve")
        assert (b.pid, victim) in runs(log)  # the same tick (same id), finished by B

        # 4. downtime: no worker across a tick boundary; the missed tick waits for one
        b.stop()
        down = time.time() * 1000
        wait_until(
            lambda: any(p["createdAt"] > down for p in ticks(server).values()), 30, "a missed tick"
        )
        missed = min(id for id, p in ticks(server).items() if p["createdAt"] > down)
        assert ticks(server)[missed]["state"] == "pending"
        c = sustain_worker(APP, "reports", tmp_path / "c.log", env)
        wait_until(lambda: missed in resolved(server), 30, f"{missed} after the restart")
        assert (c.pid, missed) in runs(log)

        # 5. the server restarts on its file (or database): the schedule is still there and
        # keeps firing
        server.stop()
        server = scenario_server(tmp_path, "--retry-timeout", "1000", db=server.db,
                                 port=server.port, store=store)  # fmt: skip
        restarted = time.time() * 1000
        assert "daily_report" in cli(tmp_path, server, "schedules", "get", "daily_report")
        wait_until(
            lambda: any(p["createdAt"] > restarted for p in resolved(server).values()),
            30, "a tick after the server restart",
        )  # fmt: skip

        # 6. delete: no further ticks
        cli(tmp_path, server, "schedules", "delete", "daily_report")
        wait_until(lambda: all(p["state"] != "pending" for p in ticks(server).values()), 30,
                   "every fired tick to resolve")  # fmt: skip
        fired = set(ticks(server))
        time.sleep(2 * PERIOD + 0.5)  # an absence: two periods in which a tick would fire
        assert set(ticks(server)) == fired
        assert set(resolved(server)) == fired  # every tick fired was resolved
        executed = [id for _, id in runs(log)]
        for id in fired:  # once each; twice only for the reports the SIGKILL interrupted
            killed = (slow.pid, id) in runs(log)
            assert executed.count(id) == (2 if killed else 1), (id, executed.count(id))
        c.stop()
    finally:
        server.stop()


@pytest.mark.sustain_env(auto_skip=False)
def test_an_hour_of_the_example_schedule_on_virtual_time(sustain_env: SustainEnv) -> None:
    """The example's schedule (create.py's cron, every minute) and report function in the
    test environment (sustain.testing): an hour of ticks, each a report run once."""
    from examples.schedule.app import generate_report
    from examples.schedule.create import CRON

    sustain_env.register(generate_report)
    sustain_env.sustain.schedule("daily_report", CRON, generate_report, user_id=123)
    sustain_env.advance(3600)
    found = sustain_env.sustain.promises.search(tags={"resonate:schedule": "daily_report"})
    reports = [p for p in found["promises"] if p["state"] == "resolved"]
    assert len(reports) == 60
    assert all(codec.decode(p["value"]).startswith("Report for user 123") for p in reports)
