"""The serverless core (``sustain.sdk.serverless``) behind ``sustain.integrations``.

A real ``sustain serve`` pushes execute messages (with a Bearer token) to the ASGI app of
``serverless_app`` served by a real uvicorn process; every answer is recorded from outside
the app (``push_recorder``).  The Lambda handler runs in short-lived subprocesses that get
real API Gateway events (v1, v2 with a base64 body) and a direct invocation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sustain import Sustain
from tests.integrations.push_recorder import read
from tests.scenarios.processes import Proc, wait_until
from tests.servers import ServerProcess, free_port, start_server, unique

APP = "tests.integrations.serverless_app"
TOKEN = "s3cret-push-token"


class Function:
    """The ASGI function process and what it recorded."""

    def __init__(self, proc: Proc, url: str, record: Path, log: Path) -> None:
        self.proc, self.url, self.record, self.log = proc, url, record, log

    def answers(self, task: str) -> list[dict[str, Any]]:
        return [r for r in read(self.record) if isinstance(r["body"], dict)
                and r["body"].get("task") == task]  # fmt: skip

    def steps(self) -> list[str]:
        return self.log.read_text().split("\n")[:-1] if self.log.exists() else []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    flags = ["--retry-timeout", "1000", "--http-push-auth-mode", "bearer",
             "--http-push-auth-token", TOKEN]  # fmt: skip
    proc = start_server(tmp_path_factory.mktemp("serverless"), *flags)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def function(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Function]:
    tmp = tmp_path_factory.mktemp("function")
    port = free_port()
    record, log = tmp / "pushes.jsonl", tmp / "steps.log"
    env = {
        "SUSTAIN_URL": server.url,
        "SERVERLESS_LOG": str(log),
        "APP_TTL": "5",
        "PUSH_TOKEN": TOKEN,
    }
    args = ["-m", "tests.integrations.push_recorder", f"{APP}:secured", str(port), str(record)]
    proc = Proc(args, tmp / "function.log", env)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.alive(), proc.output()
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:  # stopped even when it never came up
        wait_until(up, 60, "the function's uvicorn")
        yield Function(proc, url + "/run", record, log)
    finally:
        proc.stop()


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Sustain]:
    sustain = Sustain(url=server.url, group=unique("caller"))
    yield sustain
    sustain.stop()


def test_pushed_workflows_run_to_suspension_and_completion(
    function: Function, client: Sustain
) -> None:
    ids = {unique("wf"): x for x in (1, 2, 3)}
    handles = {
        id: client.options(target=function.url).rpc(id, "double_then_add", x, 1.0)
        for id, x in ids.items()
    }
    for id, x in ids.items():
        assert handles[id].result(timeout=60) == {"value": 2 * x + 1, "id": id}
    for id in ids:
        # (a duplicate delivery, answered "stale", is possible on a loaded machine)
        def roots_of(id: str = id) -> list[dict[str, Any]]:
            return [r for r in function.answers(id) if r["body"]["outcome"] != "stale"]

        # The caller's result can arrive before the recorder writes the push's answer: the
        # fulfill happens inside the push, whose HTTP answer is recorded once it is sent.
        def answered(id: str = id) -> bool:
            roots = roots_of(id)
            return bool(roots) and roots[-1]["body"]["outcome"] == "fulfilled"

        wait_until(answered, 30, f"the fulfilled answer to {id}'s last push recorded")
        roots = roots_of(id)
        # pushed once, answered at suspension (sleep, then the rpc), pushed again when the
        # awaited promise settled: never one long request holding the whole workflow
        assert len(roots) >= 2, roots
        assert [r["body"]["outcome"] for r in roots][-1] == "fulfilled"
        assert {r["body"]["outcome"] for r in roots[:-1]} == {"suspended"}, roots
        assert all(r["status"] == 200 and r["path"] == "/run" for r in roots)
        # the rpc child had no target: it came back to this function as its own push
        child = [r["body"]["outcome"] for r in function.answers(f"{id}:3")]
        assert [o for o in child if o != "stale"] == ["fulfilled"], child
        # the sleep's timer task was pushed here too, and dropped (the server resolves it)
        assert {r["body"]["outcome"] for r in function.answers(f"{id}:2")} <= {"timer", "stale"}
        assert function.steps().count(f"step {id}:1") == 1  # replays never re-ran the step


def test_the_app_answers_bad_input_and_stale_messages(function: Function, client: Sustain) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    health = httpx.get(function.url, timeout=10)
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    unsigned = httpx.post(function.url, content=b"{}", timeout=10)
    assert unsigned.status_code == 401
    assert httpx.put(function.url, headers=auth, timeout=10).status_code == 405
    garbage = httpx.post(function.url, content=b"not json", headers=auth, timeout=10)
    assert (garbage.status_code, garbage.json()["outcome"]) == (400, "invalid")
    wrong = httpx.post(function.url, json={"kind": "execute", "data": {}}, headers=auth)
    assert wrong.status_code == 400
    assert "data.task" in wrong.json()["detail"]
    unblock = httpx.post(function.url, json={"kind": "unblock", "head": {}, "data": {}},
                         headers=auth)  # fmt: skip
    assert (unblock.status_code, unblock.json()["outcome"]) == (200, "ignored")

    done = unique("wf")
    assert client.options(target=function.url).rpc(done, "add_one", 1).result(timeout=60) == 2
    for task in (done, unique("missing")):  # a message already used, a task that never was
        message = {"kind": "execute", "head": {}, "data": {"task": {"id": task, "version": 0}}}
        stale = httpx.post(function.url, json=message, headers=auth, timeout=30)
        assert (stale.status_code, stale.json()["outcome"]) == (200, "stale"), stale.text


def test_a_function_that_cannot_run_answers_an_error(function: Function, client: Sustain) -> None:
    id = unique("wf")
    client.options(target=function.url).rpc(id, "not_registered_here")

    def outcomes() -> list[tuple[int, str]]:
        return [(r["status"], r["body"]["outcome"]) for r in function.answers(id)]

    # released with a 500 (the server re-sends it), then halted after a few deliveries
    wait_until(lambda: (500, "halted") in outcomes(), 60, "the unknown function to halt")
    assert outcomes()[0] == (500, "released")


DRIVER = """
import json, sys
from sustain.sdk import serverless
from tests.integrations.serverless_app import lambda_handler, sustain
try:
    print(json.dumps(lambda_handler(json.loads(sys.argv[1]), None)))
finally:
    serverless.close(sustain)
"""


def invoke_lambda(tmp: Path, server: ServerProcess, event: dict[str, Any]) -> dict[str, Any]:
    """The Lambda handler in a process of its own that exits after answering."""
    env = {"SUSTAIN_URL": server.url, "SERVERLESS_LOG": str(tmp / "steps.log")}
    proc = Proc(["-c", DRIVER, json.dumps(event)], tmp / f"lambda-{unique()}.log", env)
    try:
        assert proc.wait(60) == 0, proc.output()
    finally:
        proc.kill9()  # only does anything when it hung
    answer: dict[str, Any] = json.loads(proc.output().strip().splitlines()[-1])
    return answer


def execute(id: str, version: int) -> dict[str, Any]:
    return {"kind": "execute", "head": {"serverUrl": "http://x"},
            "data": {"task": {"id": id, "version": version}}}  # fmt: skip


def pending_version(server: ServerProcess, id: str) -> int:
    """Wait until the task of ``id`` is pending again and give its version."""
    task: dict[str, Any] = {}

    def pending() -> bool:
        task.update(server.ok("task.get", {"id": id})["task"])
        return task["state"] == "pending"

    wait_until(pending, 30, f"task {id} pending")
    return int(task["version"])


def test_the_lambda_handler_runs_api_gateway_events(
    server: ServerProcess, client: Sustain, tmp_path: Path
) -> None:
    # The target is a Lambda URL nobody serves: the server's own pushes fail, and the test
    # plays API Gateway, delivering each execute message as Lambda would.
    url = f"http://127.0.0.1:{free_port()}/lambda"
    id = unique("wf")
    handle = client.options(target=url).rpc(id, "double_then_add", 20, 0.3)
    wait_until(lambda: server.rpc("task.get", {"id": id}).status == 200, 30, "the task")

    v1 = {"httpMethod": "POST", "path": "/lambda", "isBase64Encoded": False,
          "body": json.dumps(execute(id, 0))}  # fmt: skip
    first = invoke_lambda(tmp_path, server, v1)
    assert first["statusCode"] == 200, first
    assert json.loads(first["body"])["outcome"] == "suspended"

    body = base64.b64encode(json.dumps(execute(id, pending_version(server, id))).encode())
    v2 = {"rawPath": "/lambda", "requestContext": {"http": {"method": "POST"}},
          "isBase64Encoded": True, "body": body.decode()}  # fmt: skip
    second = invoke_lambda(tmp_path, server, v2)
    assert json.loads(second["body"])["outcome"] == "suspended"  # now on the rpc child

    child = invoke_lambda(tmp_path, server, execute(f"{id}:3", 0))  # invoked directly
    assert json.loads(child["body"])["outcome"] == "fulfilled"
    last = invoke_lambda(tmp_path, server, execute(id, pending_version(server, id)))
    assert json.loads(last["body"])["outcome"] == "fulfilled"
    assert handle.result(timeout=30) == {"value": 41, "id": id}
    assert (tmp_path / "steps.log").read_text().split() == ["step", f"{id}:1"]

    wrong = invoke_lambda(tmp_path, server, {"httpMethod": "GET", "path": "/lambda"})
    assert wrong["statusCode"] == 405


FROZEN = """
import os, sys
from sustain import Sustain
sustain = Sustain(url=sys.argv[1], group="gateway")
sustain.options(target="nobody").begin_rpc(sys.argv[2], "compute", 1)
sustain.flush()
os._exit(0)  # a Lambda frozen right after answering: no stop(), no cleanup
"""


def test_flush_makes_a_dispatch_durable_before_the_process_vanishes(
    server: ServerProcess, tmp_path: Path
) -> None:
    id = unique("job")
    proc = Proc(["-c", FROZEN, server.url, id], tmp_path / "frozen.log")
    try:
        assert proc.wait(60) == 0, proc.output()
    finally:
        proc.kill9()  # only does anything when it hung
    assert server.ok("promise.get", {"id": id})["promise"]["state"] == "pending"
