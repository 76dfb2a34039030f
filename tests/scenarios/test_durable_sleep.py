"""Scenario 5 (SCENARIOS.md §5): a 5 s durable sleep across a SIGKILLed worker.

Real ``sustain serve`` and ``sustain worker examples.durable_sleep.worker:sustain``
processes; the client is the example's ``client.py``.  t0 is the root promise's
``createdAt`` (server time).  Worker A is killed at t0+1 and B started at t0+3: the workflow
ends near t0+5, not t0+8.  Then a re-run of the client (stored result, body not run), the
variant where no worker lives when the timer fires, and a three-day sleep on ``sustain dev``
whose clock ``debug.tick`` advances.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from sustain.testing import SustainEnv
from tests.scenarios.processes import (
    EXAMPLES,
    Proc,
    Store,
    scenario_server,
    sustain_worker,
    wait_until,
)
from tests.servers import ServerProcess, start_server

APP = "examples.durable_sleep.worker:sustain"
CLIENT = str(EXAMPLES / "durable_sleep" / "client.py")
DAYS3 = 3 * 86400


def get(server: ServerProcess, id: str) -> dict[str, Any] | None:
    answer = server.rpc("promise.get", {"id": id})
    return answer.data["promise"] if answer.status == 200 else None


def task_state(server: ServerProcess, id: str) -> str:
    return str(server.ok("task.get", {"id": id})["task"]["state"])


def body_runs(log: Path, id: str) -> int:
    lines = log.read_text().splitlines() if log.exists() else []
    return sum(1 for line in lines if line.split()[1] == id)


def until(t: float) -> None:
    """Wait for wall time ``t`` (s): the scenario's own schedule of kills and starts."""
    time.sleep(max(0.0, t - time.time()))


def started(server: ServerProcess, id: str) -> float:
    """t0: when the client's call reached the server, once the worker has suspended it."""
    wait_until(lambda: get(server, f"{id}:1") is not None, 30, f"{id} to start sleeping")
    wait_until(lambda: task_state(server, id) == "suspended", 30, f"{id} to suspend")
    root = get(server, id)
    assert root is not None
    return float(root["createdAt"]) / 1000


def output(client: Proc) -> str:
    assert client.wait(60) == 0, client.output()
    return client.output().strip().splitlines()[-1]


@pytest.mark.slow
def test_sleep_survives_a_killed_worker_and_is_not_restarted(tmp_path: Path, store: Store) -> None:
    # executes for a group with no live member are re-sent after the retry timeout
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    log = tmp_path / "body.log"
    env = {"SUSTAIN_URL": server.url, "SLEEP_LOG": str(log)}
    try:
        a = sustain_worker(APP, "workers", tmp_path / "a.log", env)
        client = Proc([CLIENT, "5"], tmp_path / "client.log", env)
        t0 = started(server, "sleep-workflow-1")
        # 6. while it sleeps, no worker holds a lease: the root task is suspended
        assert task_state(server, "sleep-workflow-1") == "suspended"
        until(t0 + 1)
        a.kill9()
        until(t0 + 3)
        b = sustain_worker(APP, "workers", tmp_path / "b.log", env)
        assert output(client) == "Slept for 5 seconds"
        root, timer = get(server, "sleep-workflow-1"), get(server, "sleep-workflow-1:1")
        assert root is not None and timer is not None
        assert timer["tags"]["resonate:timer"] == "true" and timer["state"] == "resolved"
        # the timer fired 5 s after A created it, and the workflow ended right after: near
        # t0+5 plus the time A took to start it, clearly before t0+3+5 (a restarted sleep)
        assert 4.9 <= (timer["settledAt"] - timer["createdAt"]) / 1000 < 6.0
        done = root["settledAt"] / 1000 - t0
        assert 5.0 <= done < 7.5, done
        runs = body_runs(log, "sleep-workflow-1")  # once by A, once by B's replay

        # 4. the same id again: the stored result at once, the body does not run
        again = Proc([CLIENT, "5"], tmp_path / "again.log", env)
        assert output(again) == "Slept for 5 seconds"
        assert body_runs(log, "sleep-workflow-1") == runs

        # 3. no worker alive when the timer fires: done promptly once one starts
        b.stop()
        a2 = sustain_worker(APP, "workers", tmp_path / "a2.log", env)
        client2 = Proc([CLIENT, "5", "sleep-workflow-2"], tmp_path / "client2.log", env)
        t0 = started(server, "sleep-workflow-2")
        until(t0 + 1)
        a2.kill9()
        until(t0 + 7)  # the timer fired at t0+5 with nobody to resume the workflow
        assert get(server, "sleep-workflow-2:1")["state"] == "resolved"  # type: ignore[index]
        assert get(server, "sleep-workflow-2")["state"] == "pending"  # type: ignore[index]
        b2 = sustain_worker(APP, "workers", tmp_path / "b2.log", env)
        ready = time.time()
        assert output(client2) == "Slept for 5 seconds"
        root = get(server, "sleep-workflow-2")
        assert root is not None and root["settledAt"] / 1000 - ready < 4.0
        b2.stop()
    finally:
        server.stop()


@pytest.mark.slow
def test_a_three_day_sleep_under_the_debug_clock(tmp_path: Path) -> None:
    server = start_server(tmp_path, command="dev")
    env = {"SUSTAIN_URL": server.url}
    try:
        a = sustain_worker(APP, "workers", tmp_path / "a.log", env)
        client = Proc([CLIENT, str(DAYS3), "long-sleep"], tmp_path / "client.log", env)
        started(server, "long-sleep")
        a.kill9()  # no worker process runs while the three days pass
        timer = get(server, "long-sleep:1")
        assert timer is not None and timer["state"] == "pending"
        assert task_state(server, "long-sleep") == "suspended"
        b = sustain_worker(APP, "workers", tmp_path / "b.log", env)
        server.ok("debug.tick", {"time": timer["timeoutAt"] + 1000})
        assert output(client) == f"Slept for {DAYS3} seconds"
        assert get(server, "long-sleep:1")["state"] == "resolved"  # type: ignore[index]
        b.stop()
    finally:
        server.stop()


def test_the_three_day_sleep_on_virtual_time(sustain_env: SustainEnv) -> None:
    """The example's workflow in the test environment (sustain.testing): the same three-day
    sleep as above, with no server, no worker process and no debug clock to drive."""
    from examples.durable_sleep.worker import sleeping_workflow

    handle = sustain_env.options(timeout=DAYS3 + 86400).run(sleeping_workflow, DAYS3)
    assert handle.result(timeout=30) == f"Slept for {DAYS3} seconds"
    assert [c.kind for c in sustain_env.tree(handle.id).children] == ["sleep"]
