"""resonate-sdk 0.8.1 (the official Python SDK), unmodified, against ``sustain serve``.

The programs are in ``apps/official_py.py`` and run on Python 3.12; the only Sustain-specific
thing in them is the server URL.  One driver process runs most cases concurrently (it is also
the worker of its own group, as an official app is), a second process serves another group
for ``rpc`` and the fan-out, a third resolves the human-in-the-loop promise; each test below
checks one case of that run.  The crash test has processes of its own.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.interop.conftest import SERVER_FLAGS
from tests.interop.env import Environment
from tests.interop.harness import Launcher, lines_of, wait_for_file, wait_for_line
from tests.servers import ServerProcess, start_server, unique

# A first run builds the SDKs' environment (pip, npm) inside the first test's setup.
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def run(interop_env: Any, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("official-py")
    launch = Launcher(interop_env, server.url, tmp)
    counts = tmp / "counts.txt"
    marker = tmp / "hitl-id.txt"
    env = {"INTEROP_COUNTS": str(counts)}
    main, other = unique("py-main"), unique("py-other")
    schedule_id = unique("reports.daily")  # dotted names are the official SDKs' too
    ids = {name: unique(name) for name in ("two", "remote", "sleep", "hitl", "det", "fan")}
    ids["dotted"] = unique("my.app.flow")
    plan = [
        {"name": "two", "op": "run", "id": ids["two"], "func": "two_steps", "args": ["two", 1]},
        {"name": "remote", "op": "run", "id": ids["remote"], "func": "call_remote",
         "args": [other, 20, 22]},
        {"name": "sleep", "op": "run", "id": ids["sleep"], "func": "sleeper", "args": [2]},
        {"name": "hitl", "op": "run", "id": ids["hitl"], "func": "approval",
         "args": [str(marker)]},
        {"name": "det", "op": "run", "id": ids["det"], "func": "with_detached",
         "args": ["hello"], "then_get": True},
        {"name": "fan", "op": "run", "id": ids["fan"], "func": "fan_out", "args": [other, 20]},
        {"name": "schedule", "op": "schedule", "id": schedule_id, "target": main},
        # a dotted root id (allowed by the SDK): its tree, rpc and callback included
        {"name": "dotted", "op": "run", "id": ids["dotted"], "func": "call_remote",
         "args": [other, 1, 2]},
    ]  # fmt: skip
    try:
        launch.py("worker", "--group", other, env=env)
        driver = launch.py_cases(main, plan, env=env)
        # the human: a separate process settles the promise the workflow is waiting on
        wait_for_file(marker, driver, "the HITL id")
        hitl_id = marker.read_text()
        resolver = launch.py("resolve", "--id", hitl_id, "--value", '"yes"')
        assert resolver.wait(60) == 0, resolver.output()
        results = driver.wait_results([case["name"] for case in plan], timeout=150)
        assert driver.wait(30) == 0, driver.output()
        # the same ids again, from a new process: the stored results, nothing re-runs
        again = launch.py_cases(main, [
            {"name": "two", "op": "run", "id": ids["two"], "func": "two_steps", "args": ["two", 1]},
            {"name": "hitl", "op": "run", "id": ids["hitl"], "func": "approval",
             "args": [str(marker)]},
        ], env=env)  # fmt: skip
        repeated = again.wait_results(["two", "hitl"], timeout=60)
        return {
            "results": results, "repeated": repeated, "counts": Counter(lines_of(counts)),
            "ids": ids, "hitl_id": hitl_id, "schedule_id": schedule_id, "main": main,
            "driver": driver,
        }  # fmt: skip
    finally:
        launch.close()


def value(run: Any, name: str) -> Any:
    result = run["results"][name]
    assert result["ok"], f"{name}: {result}\n{run['driver'].output()}"
    return result["value"]


def test_two_sequential_steps(run: Any) -> None:
    assert value(run, "two") == [10, 20]
    assert run["counts"]["step:two:1"] == 1
    assert run["counts"]["step:two:2"] == 1


def test_rpc_to_a_worker_in_another_group(run: Any) -> None:
    assert value(run, "remote") == 42


def test_durable_sleep_of_two_seconds(run: Any) -> None:
    elapsed_ms = value(run, "sleep")
    assert 1900 <= elapsed_ms < 60_000


def test_human_in_the_loop_resolved_by_another_process(run: Any) -> None:
    assert value(run, "hitl") == "approved:yes"
    assert run["hitl_id"] == f"{run['ids']['hitl']}:1"


def test_detached_child_runs_on_its_own(run: Any) -> None:
    got = value(run, "det")
    assert got["id"].startswith(f"{run['ids']['det']}:d")
    assert got["result"] == "logged:hello"
    assert run["counts"]["audit:hello"] == 1


def test_fan_out_of_twenty_parallel_children(run: Any) -> None:
    assert value(run, "fan") == sum(i * i for i in range(20))


def test_dotted_root_id(run: Any) -> None:
    assert value(run, "dotted") == 3


def test_schedule_create_get_search_delete_and_fire(run: Any) -> None:
    got = value(run, "schedule")
    sid = run["schedule_id"]
    assert got["get"]["id"] == sid
    assert got["get"]["cron"] == "* * * * * *"
    assert sid in got["search_ids"]
    assert got["fired"], got
    assert all(pid.startswith(f"{sid}-") for pid in got["fired"])
    assert set(got["values"]) == {sid}
    assert run["counts"][f"tick:{sid}"] >= 1
    assert got["raw_created"] == f"{sid}-raw"
    assert got["after_delete"] == [404, 404]


def test_same_id_twice_returns_the_stored_result(run: Any) -> None:
    repeated = run["repeated"]
    assert repeated["two"] == {"name": "two", "ok": True, "value": [10, 20]}
    assert repeated["hitl"] == {"name": "hitl", "ok": True, "value": "approved:yes"}
    assert run["counts"]["step:two:1"] == 1  # not re-run by the second process


def test_sigkilled_worker_is_resumed_by_another_without_rerunning_steps(
    launch: Launcher, tmp_path: Path
) -> None:
    counts = tmp_path / "crash.txt"
    group = unique("py-crash")
    env = {"INTEROP_COUNTS": str(counts)}
    first = launch.py("worker", "--group", group, "--ttl", "3", env={**env, "INTEROP_HANG": "1"})
    wait_for_line(first, "WORKER")
    wf = unique("crash")
    client = launch.py_cases(unique("py-client"), [
        {"name": "crash", "op": "rpc", "id": wf, "func": "crashy", "target": group},
    ], env=env)  # fmt: skip
    wait_for_file(counts, client, "step b to start", "crash:b-start")
    first.kill9()
    launch.py("worker", "--group", group, "--ttl", "3", env=env)
    result = client.wait_results(["crash"], timeout=120)["crash"]
    assert result == {"name": "crash", "ok": True, "value": ["a", "b", "c"]}, client.output()
    seen = Counter(lines_of(counts))
    assert seen["crash:a"] == 1  # finished before the crash: not re-run
    assert seen["crash:b-start"] == 2  # interrupted by the crash: run again
    assert seen["crash:b-done"] == 1
    assert seen["crash:c"] == 1


def test_leases_of_tasks_from_several_lineages_stay_alive(launch: Launcher, tmp_path: Path) -> None:
    """The official SDKs heartbeat every task they hold in one ``task.heartbeat``, whatever
    its origin: a worker busy with two workflows for longer than its ttl keeps both leases,
    so no step runs twice."""
    counts = tmp_path / "leases.txt"
    group = unique("py-lease")
    env = {"INTEROP_COUNTS": str(counts)}
    worker = launch.py("worker", "--group", group, "--ttl", "3", env=env)
    wait_for_line(worker, "WORKER")
    client = launch.py_cases(unique("py-client"), [
        {"name": name, "op": "rpc", "id": unique(name), "func": "long_step",
         "args": [name, 7], "target": group}
        for name in ("first", "second")
    ])  # fmt: skip
    results = client.wait_results(["first", "second"], timeout=120)
    assert results["first"]["value"] == "first", client.output()
    assert results["second"]["value"] == "second", client.output()
    seen = Counter(lines_of(counts))
    for name in ("first", "second"):
        assert seen[f"sleepy:{name}:start"] == 1, (seen, worker.output())
    assert "heartbeat failed" not in worker.output()


def test_server_killed_mid_workflow_and_restarted(interop_env: Environment, tmp_path: Path) -> None:
    """SIGKILL the Sustain server while an official workflow sleeps; restarted on the same
    port and file, the SDK reconnects by itself and the workflow completes."""
    server = start_server(tmp_path, *SERVER_FLAGS)
    launch = Launcher(interop_env, server.url, tmp_path)
    counts = tmp_path / "restart.txt"
    try:
        wf = unique("restart")
        driver = launch.py_cases(unique("py-restart"), [
            {"name": "wf", "op": "run", "id": wf, "func": "two_steps_around_sleep",
             "args": ["r", 3]},
        ], env={"INTEROP_COUNTS": str(counts)})  # fmt: skip
        wait_for_file(counts, driver, "the first step", "step:r:1")
        server.proc.kill()
        server.proc.wait(timeout=10)
        server = start_server(tmp_path, *SERVER_FLAGS, port=server.port, db=server.db)
        result = driver.wait_results(["wf"], timeout=120)["wf"]
        assert result == {"name": "wf", "ok": True, "value": [10, 20]}, driver.output()
        seen = Counter(lines_of(counts))
        assert (seen["step:r:1"], seen["step:r:2"]) == (1, 1)
    finally:
        launch.close()
        server.stop()
