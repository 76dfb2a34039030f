"""Patches under the history replay and the deploy check, against a real server and real
worker processes (the deploys are tests/replay/orders.py's ``v1``, ``patched``,
``deprecated`` and ``unpatched``; the patch is ``fee``).

Three executions of one workflow are made for real, as a deploy with a patch makes them:
``before`` by a worker of v1 (``charge`` at step 1, no marker), ``after`` by a worker of the
patched code (the marker at step 1, ``charge_with_fee`` at step 2), both asleep for an hour;
and ``unstarted``, sent once both workers were SIGKILLed, so its history ends right where
the patch stands (nothing at step 1: the frontier).  ``sustain check`` then replays them
against each later deploy, and ``sustain.testing.replay`` replays their exports.  No check
or replay may run a leaf, nor send a request.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sustain import NondeterminismError, Sustain
from sustain.testing.replay import replay
from tests.replay import orders
from tests.replay.test_deploy_check import SUSTAIN, _wait, cli
from tests.sdk.conftest import unique
from tests.sdk.test_crash import spawn
from tests.servers import ServerProcess, start_server


@dataclass
class Executions:
    tmp: Path
    url: str
    group: str
    before: str
    after: str
    unstarted: str

    def check(self, deploy: str, *more: str) -> tuple[int, str]:
        """The exit status and stdout of ``sustain check`` (``more``: global options)."""
        done = cli(self.tmp, self.group, *more, "check", f"tests.replay.orders:{deploy}",
                   "--against", self.url)  # fmt: skip
        return done.returncode, done.stdout

    def export(self, id: str) -> dict[str, Any]:
        exported = cli(self.tmp, self.group, "-S", self.url, "export", id)
        assert exported.returncode == 0, exported.stderr
        document: dict[str, Any] = json.loads(exported.stdout)
        return document


def _run_until(tmp: Path, url: str, group: str, deploy: str, done: Callable[[], bool]) -> None:
    """A worker of ``deploy`` runs until ``done()``, then is SIGKILLed."""
    env = {"SUSTAIN_URL": url, "ORDERS_GROUP": group, "ORDERS_LOG": str(tmp / "worker.log"),
           "SUSTAIN_WORKER_STATE_DIR": str(tmp / deploy)}  # fmt: skip
    argv = [SUSTAIN, "worker", f"tests.replay.orders:{deploy}", "--group", group]
    worker = spawn(argv, env, tmp / "worker.out")
    try:
        _wait(lambda: "serving" in (tmp / "worker.out").read_text(), worker, tmp)
        _wait(done, worker, tmp)
    finally:
        worker.kill()
        worker.wait()


def _pending(server: ServerProcess, id: str) -> bool:
    answer = server.rpc("promise.get", {"id": id})
    return answer.head_status == 200 and answer.data["promise"]["state"] == "pending"


@pytest.fixture
def executions(tmp_path: Path) -> Iterator[Executions]:
    server = start_server(tmp_path)
    group = unique("orders")
    caller = Sustain(url=server.url, group=unique("caller"))
    before, after, unstarted = unique("before"), unique("after"), unique("unstarted")
    try:
        send = caller.options(target=group)
        send.rpc(before, "order", before, 5)
        _run_until(tmp_path, server.url, group, "v1", lambda: _pending(server, f"{before}:2"))
        send.rpc(after, "order", after, 5)
        _run_until(tmp_path, server.url, group, "patched", lambda: _pending(server, f"{after}:3"))
        send.rpc(unstarted, "order", unstarted, 5)  # no worker any more: nothing below it
        yield Executions(tmp_path, server.url, group, before, after, unstarted)
    finally:
        caller.stop()
        server.stop()
    assert not (tmp_path / "cli.log").exists(), "a check, an export or a replay ran a leaf"


def test_the_deploy_check_passes_a_patch_and_stops_a_change_without_one(
    executions: Executions,
) -> None:
    e = executions
    code, out = e.check("patched")
    assert code == 0, out
    # the old execution's patch answers False (its old charge replays); the new one's True
    assert f"ok       {e.before} (order v1): replays 2 recorded steps, then waits" in out
    assert f"ok       {e.after} (order v1): replays 3 recorded steps, then waits" in out
    # the patch is the frontier of the unstarted one: the replay stops there, sending nothing
    assert f"ok       {e.unstarted} (order v1): replays 0 recorded steps" in out

    code, out = e.check("unpatched")
    assert code == 1
    assert f"DIVERGES {e.before} (order v1): step 1: recorded 'charge', now calls " in out
    # the patch dropped too early: the execution that recorded its marker names it
    assert (
        f"DIVERGES {e.after} (order v1): step 1: recorded 'sustain.patch:fee', now calls "
        "'charge_with_fee'" in out
    )
    assert f"ok       {e.unstarted} (order v1)" in out

    # the cleanup deploy replays the marker, and is too early while ``before`` waits
    code, out = e.check("deprecated")
    assert code == 1
    assert f"ok       {e.after} (order v1): replays 3 recorded steps" in out
    assert f"DIVERGES {e.before} (order v1): step 1: recorded 'charge'" in out

    code, out = e.check("unpatched", "--json")
    verdict = {v["id"]: v for v in json.loads(out)}[e.after]
    assert (verdict["result"], verdict["step"], verdict["recorded"], verdict["found"]) == (
        "DIVERGES", 1, "sustain.patch:fee", "charge_with_fee",
    )  # fmt: skip


def test_exported_histories_replay_across_the_patch(
    executions: Executions, monkeypatch: pytest.MonkeyPatch
) -> None:
    e = executions
    monkeypatch.setenv("ORDERS_LOG", str(e.tmp / "cli.log"))
    before, after, unstarted = e.export(e.before), e.export(e.after), e.export(e.unstarted)
    assert [p["id"] for p in after["promises"]] == [e.after, *(f"{e.after}:{n}" for n in (1, 2, 3))]

    # 1. recorded with the patch: replays with it, and with its deprecation
    for fn in (orders.order_patched, orders.order_deprecated):
        report = replay(fn, after)
        assert (report.status, report.steps) == ("suspended", 3), fn
    # 2. recorded by the old code: the patch answers False and the old branch replays
    report = replay(orders.order_patched, before)
    assert (report.status, report.steps) == ("suspended", 2)
    # 3. nothing at the patch's slot: the frontier; the replay stops there, writes nothing
    report = replay(orders.order_patched, unstarted)
    assert (report.status, report.steps) == ("suspended", 0)
    # past the end of a completed execution the old code went on without it: False
    ended = copy.deepcopy(unstarted)
    ended["promises"][0]["state"] = "resolved"
    with pytest.raises(NondeterminismError) as caught:
        replay(orders.order_patched, ended)
    assert (caught.value.step, caught.value.found) == (1, "charge")
    assert "ended" in caught.value.recorded
    # a marker whose settle a crash cut short replays as the marker, and stays unsettled
    cut = copy.deepcopy(after)
    marker = next(p for p in cut["promises"] if p["id"] == f"{e.after}:1")
    marker.update(state="pending", value={})
    marker.pop("settledAt", None)
    assert replay(orders.order_patched, cut).steps == 3
    # 4. removed too early: the divergence names the patch
    with pytest.raises(NondeterminismError) as caught:
        replay(orders.order_unpatched, after)
    assert (caught.value.step, caught.value.recorded, caught.value.found) == (
        1, "sustain.patch:fee", "charge_with_fee",
    )  # fmt: skip
