"""Sustain and the official SDKs in one system, through one ``sustain serve``.

* A Sustain workflow (this test process, ``Sustain(url=...)``) ``rpc``s functions registered
  by an official Python worker and by an official TypeScript worker.
* An official Python workflow and an official TypeScript workflow ``rpc`` functions registered
  in a Sustain worker (``sustain worker tests.interop.apps.sustain_app:sustain --group g``),
  among them a Sustain workflow (a step, a durable sleep, an ``rpc`` back to the caller's
  SDK) running under a root promise the official SDK created.

Arguments and results must survive each crossing unchanged (nested JSON, unicode, floats,
null), and an exception raised on one side must arrive on the other as an error carrying its
message: the codec is shared (SDK-WIRE §1.3), so this is the codec's test across languages.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from sustain import ApplicationError, Context, Sustain
from tests.interop.harness import Launcher, wait_for_line
from tests.servers import ServerProcess, unique

# A first run builds the SDKs' environment (pip, npm) inside the first test's setup.
pytestmark = pytest.mark.timeout(600)

PAYLOAD: dict[str, Any] = {
    "name": "Ada ✓ é",
    "numbers": [1, -2, 2.5, 1e300],
    "flags": {"yes": True, "no": False, "nothing": None},
    "nested": [[{"deep": "value"}], []],
}


@pytest.fixture
def caller(server: ServerProcess) -> Iterator[Sustain]:
    sustain = Sustain(url=server.url, group=unique("sus-caller"))

    @sustain.register
    def cross(ctx: Context, py_target: str, ts_target: str, payload: Any) -> Any:
        out: dict[str, Any] = {}
        out["py"] = yield ctx.options(target=py_target).rpc("py_greet", payload)
        out["ts"] = yield ctx.options(target=ts_target).rpc("ts_greet", payload)
        # JSON has no infinity: both sides write the TS SDK's markers and read them back
        out["inf"] = yield ctx.options(target=ts_target).rpc("ts_greet", [math.inf, -math.inf])
        errors: dict[str, Any] = {}
        for side, target, fn in (("py", py_target, "py_fail"), ("ts", ts_target, "ts_fail")):
            try:
                yield ctx.options(target=target).rpc(fn, f"boom from the official {side} SDK")
            except ApplicationError as exc:
                errors[side] = {"message": exc.message, "name": exc.name}
        out["errors"] = errors
        return out

    yield sustain
    sustain.stop()


def test_sustain_workflow_calls_official_python_and_typescript_workers(
    launch: Launcher, caller: Sustain
) -> None:
    py_group, ts_group = unique("py-callee"), unique("ts-callee")
    wait_for_line(launch.py("worker", "--group", py_group), "WORKER")
    wait_for_line(launch.node("worker", "--group", ts_group), "WORKER")
    handle = caller.run(unique("cross"), "cross", py_group, ts_group, PAYLOAD)
    out = handle.result(timeout=120)
    assert out["py"] == {"got": PAYLOAD, "by": "official-py"}
    assert out["ts"] == {"got": PAYLOAD, "by": "official-ts"}
    assert out["inf"] == {"got": [math.inf, -math.inf], "by": "official-ts"}
    assert out["errors"]["py"]["message"] == "boom from the official py SDK"
    assert out["errors"]["ts"] == {"message": "boom from the official ts SDK", "name": "Error"}


def test_top_level_sustain_rpc_to_official_workers_errors_included(
    launch: Launcher, caller: Sustain
) -> None:
    py_group, ts_group = unique("py-callee"), unique("ts-callee")
    wait_for_line(launch.py("worker", "--group", py_group), "WORKER")
    wait_for_line(launch.node("worker", "--group", ts_group), "WORKER")
    assert (
        caller.options(target=ts_group).rpc(unique("add"), "ts_add", 40, 2).result(timeout=60) == 42
    )
    assert (
        caller.options(target=py_group).rpc(unique("add"), "py_add", 40, 2).result(timeout=60) == 42
    )
    for group, fn in ((py_group, "py_fail"), (ts_group, "ts_fail")):
        handle = caller.options(target=group).rpc(unique("fail"), fn, f"top-level {fn}")
        with pytest.raises(ApplicationError) as raised:
            handle.result(timeout=60)
        assert raised.value.message == f"top-level {fn}"


def test_official_workflows_call_a_sustain_worker(launch: Launcher) -> None:
    sus_group = unique("sus-callee")
    wait_for_line(launch.sustain_worker(sus_group), "worker ")
    py_group = unique("py-caller")
    py = launch.py_cases(py_group, [
        {"name": "py", "op": "run", "id": unique("py-calls-sus"), "func": "call_sustain",
         "args": [sus_group, PAYLOAD]},
        # official workflow -> Sustain workflow (steps, sleep) -> back to an official function
        {"name": "py-wf", "op": "run", "id": unique("py-wf"), "func": "call_sustain_workflow",
         "args": [sus_group, 20, py_group]},
        {"name": "py-top", "op": "rpc", "id": unique("py-top"), "func": "sus_echo",
         "args": [PAYLOAD], "target": sus_group},
    ])  # fmt: skip
    ts_group = unique("ts-caller")
    ts = launch.node_cases(ts_group, [
        {"name": "ts-wf", "op": "run", "id": unique("ts-wf"), "func": "ts_call_sustain_workflow",
         "args": [sus_group, 20, ts_group]},
        {"name": "ts", "op": "run", "id": unique("ts-calls-sus"), "func": "ts_call_sustain",
         "args": [sus_group, PAYLOAD]},
        {"name": "ts-top", "op": "rpc", "id": unique("ts-top"), "func": "sus_fail",
         "args": ["top-level from ts"], "target": sus_group},
    ])  # fmt: skip
    py_results = py.wait_results(["py", "py-top", "py-wf"])
    ts_results = ts.wait_results(["ts", "ts-top", "ts-wf"])
    echoed = {"got": PAYLOAD, "by": "sustain"}
    assert py_results["py"]["ok"], py.output()
    assert py_results["py"]["value"] == {
        "ok": echoed,
        "error": {"type": "ApplicationError", "message": "boom from a Sustain worker"},
    }
    assert py_results["py-top"] == {"name": "py-top", "ok": True, "value": echoed}
    assert py_results["py-wf"] == {
        "name": "py-wf",
        "ok": True,
        "value": {"doubled": 40, "added": 41},
    }, py.output()
    assert ts_results["ts"]["ok"], ts.output()
    assert ts_results["ts"]["value"] == {
        "ok": echoed,
        "error": {"type": "Error", "message": "boom from a Sustain worker"},
    }
    assert ts_results["ts-wf"] == {
        "name": "ts-wf",
        "ok": True,
        "value": {"doubled": 40, "added": 41},
    }, ts.output()
    assert ts_results["ts-top"]["ok"] is False
    assert ts_results["ts-top"]["error"] == "top-level from ts"
