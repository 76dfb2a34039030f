"""``sustain export`` and ``sustain check`` against a real server with a real worker.

One server (SQLite) and one ``sustain worker tests.replay.orders:v1`` process: two orders
are sent to the worker's group and run until their hour-long sleep.  Then, as a CI job
would, ``sustain check`` replays them against each later deploy of the app (orders.py):
the compatible one passes, the diverging one is refused with the step, the one that
dropped the workflow is refused too.  The worker is SIGKILLed and the server stopped, and
the same checks and the export run again from the server's SQLite file.  No check or
export may run a leaf (every leaf appends to its ``ORDERS_LOG``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sustain import NondeterminismError, Sustain
from sustain.testing.replay import replay
from tests.replay import orders
from tests.sdk.conftest import unique
from tests.sdk.test_crash import spawn
from tests.servers import ServerProcess, start_server

ROOT = Path(__file__).resolve().parents[2]
SUSTAIN = str(Path(sys.executable).parent / "sustain")
PATIENCE = 30.0


@dataclass
class Deployment:
    tmp: Path
    server: ServerProcess
    worker: subprocess.Popen[bytes]
    group: str
    ids: list[str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(self.tmp, self.group, *args)

    def check(self, app: str, against: str, *more: str) -> subprocess.CompletedProcess[str]:
        return self.cli("check", f"tests.replay.orders:{app}", "--against", against, *more)


def cli(tmp: Path, group: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The ``sustain`` command as a CI job runs it (leaves would log to ``cli.log``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")}
    log = str(tmp / "cli.log")
    env.update(ORDERS_GROUP=group, NESTED_GROUP=group, ORDERS_LOG=log, NESTED_LOG=log)
    return subprocess.run(
        [SUSTAIN, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def _sleeping(server: ServerProcess, id: str) -> bool:
    answer = server.rpc("promise.get", {"id": f"{id}:2"})
    return answer.head_status == 200 and answer.data["promise"]["state"] == "pending"


def _wait(done: Callable[[], bool], worker: subprocess.Popen[bytes], tmp: Path) -> None:
    deadline = time.monotonic() + PATIENCE
    while not done():
        assert worker.poll() is None, (tmp / "worker.out").read_text()
        assert time.monotonic() < deadline, (tmp / "worker.out").read_text()
        time.sleep(0.05)


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    server = start_server(tmp_path)
    group = unique("orders")
    env = {"SUSTAIN_URL": server.url, "ORDERS_GROUP": group,
           "ORDERS_LOG": str(tmp_path / "worker.log"),
           "SUSTAIN_WORKER_STATE_DIR": str(tmp_path / "state")}  # fmt: skip
    argv = [SUSTAIN, "worker", "tests.replay.orders:v1", "--group", group]
    worker = spawn(argv, env, tmp_path / "worker.out")
    caller = Sustain(url=server.url, group=unique("caller"))
    try:
        # an execution sent before the worker listens waits for the task retry timer
        _wait(lambda: "serving" in (tmp_path / "worker.out").read_text(), worker, tmp_path)
        ids = [unique("order"), unique("order")]
        for id in ids:
            caller.options(target=group).rpc(id, "order", id, 5)
        _wait(lambda: all(_sleeping(server, id) for id in ids), worker, tmp_path)
        yield Deployment(tmp_path, server, worker, group, ids)
    finally:
        caller.stop()
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        server.stop()
    assert not (tmp_path / "cli.log").exists(), "a check or an export ran a leaf"


def _promises(document: dict[str, Any]) -> dict[str, Any]:
    return {p["id"]: p for p in document["promises"]}


def test_the_deploy_check_passes_a_compatible_deploy_and_stops_a_diverging_one(
    deployment: Deployment,
) -> None:
    d = deployment
    url = d.server.url
    ok = d.check("compatible", url)
    assert ok.returncode == 0, ok.stderr
    for id in d.ids:
        assert f"ok       {id} (order v1): replays 2 recorded steps, then waits there" in ok.stdout

    bad = d.check("diverging", url)
    assert bad.returncode == 1
    for id in d.ids:
        line = f"DIVERGES {id} (order v1): step 2: recorded 'sleep', now calls 'audit'"
        assert line in bad.stdout
    assert bad.stderr.strip().splitlines() == [
        "Error: 2 of 2 pending executions would not replay with tests.replay.orders:diverging"
    ]

    gone = d.check("gone", url, "--limit", "1")
    assert gone.returncode == 1
    assert gone.stdout.count("MISSING") == 1
    assert "order v1 is not registered in this app" in gone.stdout

    as_json = d.cli("--json", "check", "tests.replay.orders:diverging", "--against", url)
    verdicts = {v["id"]: v for v in json.loads(as_json.stdout)}
    assert set(verdicts) == set(d.ids)
    assert {(v["result"], v["step"], v["recorded"], v["found"]) for v in verdicts.values()} == {
        ("DIVERGES", 2, "sleep", "audit")
    }


def test_export_from_the_server_and_from_its_file_replays_against_new_code(
    deployment: Deployment,
) -> None:
    d = deployment
    id = d.ids[0]
    exported = d.cli("-S", d.server.url, "export", id)
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert (document["format"], document["version"], document["root"]) == (
        "sustain.history", 1, id,
    )  # fmt: skip
    assert [p["id"] for p in document["promises"]] == [id, f"{id}:1", f"{id}:2"]
    assert replay(orders.order_compatible, document, sustain=orders.compatible).status == (
        "suspended"
    )
    with pytest.raises(NondeterminismError) as caught:
        replay(orders.order_diverging, document)
    assert (caught.value.step, caught.value.found) == (2, "audit")

    # The file is the server's until it stops: the export says so in one line.
    held = d.cli("export", id, "--store", str(d.server.db))
    assert held.returncode == 1
    assert held.stderr.startswith("Error: ") and "already open" in held.stderr
    d.worker.kill()
    d.worker.wait()
    d.server.stop()

    from_file = d.cli("export", id, "--store", str(d.server.db))
    assert from_file.returncode == 0, from_file.stderr
    assert _promises(json.loads(from_file.stdout)) == _promises(document)
    file_check = d.check("diverging", str(d.server.db))
    assert file_check.returncode == 1
    assert file_check.stdout.count("DIVERGES") == 2
    assert d.check("compatible", str(d.server.db)).returncode == 0


def test_check_and_export_mistakes_are_one_line(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1"  # nothing listens there
    app = "tests.replay.orders:compatible"
    cases = [
        (("check", app, "--against", url), 3, "cannot reach the server"),
        (("check", "tests.replay.nowhere:app", "--against", url), 1,
         "cannot import 'tests.replay.nowhere'"),
        (("check", "tests.replay.orders:GROUP", "--against", url), 1,
         "is not a Sustain instance"),
        (("check", app, "--against", str(tmp_path / "missing.db")), 1, "no such database file"),
        (("export", "x", "--store", str(tmp_path / "missing.db")), 1, "no such database file"),
        (("-S", url, "export", "x"), 3, "cannot reach the server"),
    ]  # fmt: skip
    for args, code, message in cases:
        result = cli(tmp_path, "orders", *args)
        assert result.returncode == code, result
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], lines
    assert not (tmp_path / "missing.db").exists()


def test_an_rpc_child_is_checked_as_an_execution_of_its_own(tmp_path: Path) -> None:
    # A real process runs parent -> rpc child (sleeping) embedded on a SQLite file and stops.
    db, id = tmp_path / "nested.db", unique("parent")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")},
           "NESTED_LOG": str(tmp_path / "run.log")}  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "tests.replay.nested", str(db), id],
        env=env, cwd=ROOT, check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    same = cli(tmp_path, "nested", "check", "tests.replay.nested:v1", "--against", str(db))
    assert same.returncode == 0, same.stderr
    assert f"ok       {id} (parent v1): replays 2 recorded steps, then waits there" in same.stdout
    assert f"ok       {id}:2 (child v1): replays 1 recorded step, then waits there" in same.stdout
    changed = cli(tmp_path, "nested", "check", "tests.replay.nested:v2", "--against", str(db))
    assert changed.returncode == 1
    assert f"ok       {id} (parent v1)" in changed.stdout
    assert f"DIVERGES {id}:2 (child v1): step 1: recorded 'sleep', now calls 'note'" in (
        changed.stdout
    )
    assert not (tmp_path / "cli.log").exists()
