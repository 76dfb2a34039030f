"""What the server answers never trips the official SDKs' validators (SDK-WIRE §3.2, §3.3).

A scripted session sends every request kind the official SDKs send (and the TS clients'
extras), in the states that make records interesting: pending and settled promises, acquired,
suspended, resumed and fulfilled tasks, nested fence answers (200 and 404 inside), a 300
suspend, errors, schedules.  A poll stream records the push messages meanwhile.  Then:

* the records are checked here, field by field: no JSON ``null`` anywhere in an answer,
  ``resumes`` on every task, ``preload`` on every claim and fence, fence answers as full
  nested envelopes, a ``head`` on every message, error data as a string;
* the same capture is fed to ``ts/validate.mjs``, which applies the TypeScript SDK's own
  exported type guards (``isResponse``, ``isTaskFenceRes``, ``isMessage``, ...), the checks
  its ``HttpNetwork`` runs on every answer and message;
* and to ``official_py.py validate``, which parses it with the Python SDK's own response,
  message and page structs, and every preload and search record strictly (the SDK would
  silently drop a record it cannot parse).

A control test feeds both validators deliberately broken records, so a validator that accepts
everything would fail it.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.interop.env import Environment
from tests.interop.harness import OFFICIAL_PY
from tests.scenarios.processes import wait_until
from tests.servers import VERSION, ServerProcess, unique

# A first run builds the SDKs' environment (pip, npm) inside the first test's setup.
pytestmark = pytest.mark.timeout(600)

HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


class Capture:
    """Sends envelopes and keeps every request with its answer and HTTP status."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.entries: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.raw_lines: list[str] = []

    def send(self, kind: str, data: Any, expect: int | None = 200) -> Any:
        request = {"kind": kind, "head": {"corrId": unique("c"), "version": VERSION}, "data": data}
        answer = self.server.client.post("/", content=json.dumps(request))
        body = answer.json()
        self.entries.append(
            {"request": request, "response": body, "httpStatus": answer.status_code}
        )
        if expect is not None:
            assert body["head"]["status"] == expect, (request, body)
        return body["data"]


def tags(id: str, origin: str, parent: str, branch: str, **extra: str) -> dict[str, str]:
    base = {"resonate:origin": origin, "resonate:parent": parent, "resonate:branch": branch}
    return {**base, **{f"resonate:{k}": v for k, v in extra.items()}}


def action(kind: str, data: Any) -> dict[str, Any]:
    return {"kind": kind, "head": {"corrId": unique("c"), "version": VERSION}, "data": data}


@pytest.fixture
def stream(server: ServerProcess) -> Iterator[tuple[str, str, list[str]]]:
    """A poll stream for a fresh group and pid, read by a thread into a list of lines."""
    group, pid = unique("g"), unique("pid")
    lines: list[str] = []
    stop = threading.Event()
    opened = threading.Event()

    def read() -> None:
        try:
            with (
                httpx.Client(base_url=server.url, timeout=httpx.Timeout(60, read=None)) as client,
                client.stream("GET", f"/poll/{group}/{pid}") as response,
            ):
                opened.set()
                for line in response.iter_lines():
                    lines.append(line)
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            return  # the server stopped at the end of the module: the stream is over

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(30)
    yield group, pid, lines
    stop.set()


def scripted_session(cap: Capture, group: str, pid: str) -> None:
    any_g, uni = f"poll://any@{group}", f"poll://uni@{group}/{pid}"
    other = f"poll://any@{unique('other')}"
    soon = now_ms() + HOUR

    # -- promises --------------------------------------------------------------------------
    plain = unique("plain")
    cap.send("promise.create", {"id": plain, "timeoutAt": soon})  # no param, no tags
    cap.send("promise.get", {"id": plain})
    cap.send("promise.get", {"id": unique("missing")}, expect=404)
    cap.send("promise.register_listener", {"awaited": plain, "address": uni})
    cap.send("promise.settle", {"id": plain, "state": "resolved", "value": {"data": b64(1)}})
    cap.send("promise.settle", {"id": plain, "state": "rejected"})  # settled: echoed
    cap.send("promise.register_listener", {"awaited": plain, "address": uni})  # settled
    cap.send("promise.settle", {"id": unique("missing"), "state": "resolved"}, expect=404)
    gone = unique("late")
    cap.send("promise.create", {"id": gone, "timeoutAt": now_ms() - 1000})  # born timed out
    cap.send(
        "promise.create",
        {"id": unique("empty"), "timeoutAt": soon, "param": {"headers": {}, "data": ""}},
    )  # fmt: skip  (TS's empty)

    # -- a workflow as the SDKs drive it ---------------------------------------------------
    wf = unique("wf")
    root = {"id": wf, "timeoutAt": soon, "param": {"data": b64({"func": "f", "args": []})},
            "tags": tags(wf, wf, wf, wf, scope="global", target=any_g)}  # fmt: skip
    cap.send("promise.create", root)  # -> execute to the group
    task = cap.send("task.acquire", {"id": wf, "version": 0, "pid": pid, "ttl": 60_000})["task"]
    v = task["version"]
    fence = {"id": wf, "version": v}
    step = f"{wf}:1"
    cap.send("task.fence", {**fence, "action": action("promise.create", {
        "id": step, "timeoutAt": soon, "param": {}, "tags": tags(step, wf, wf, wf, scope="local"),
    })})  # fmt: skip
    cap.send("task.fence", {**fence, "action": action("promise.settle", {
        "id": step, "state": "resolved", "value": {"data": b64(10)}})})  # fmt: skip
    remote, timer, human = f"{wf}:2", f"{wf}:3", f"{wf}:4"
    cap.send("task.fence", {**fence, "action": action("promise.create", {
        "id": remote, "timeoutAt": soon, "param": {"data": b64({"func": "g", "args": [1]})},
        "tags": tags(remote, wf, wf, remote, scope="global", target=other)})})  # fmt: skip
    cap.send(
        "task.fence",
        {
            **fence,
            "action": action(
                "promise.create",
                {
                    "id": timer,
                    "timeoutAt": now_ms() + 60_000,
                    "tags": tags(timer, wf, wf, timer, scope="global", target=any_g, timer="true"),
                },
            ),
        },
    )
    cap.send("task.fence", {**fence, "action": action("promise.create", {
        "id": human, "timeoutAt": soon,
        "tags": tags(human, wf, wf, human, scope="global", external="true")})})  # fmt: skip
    answer = cap.send("task.fence", {**fence, "action": action("promise.settle", {
        "id": f"{wf}:99", "state": "resolved"})})  # fmt: skip
    assert answer["action"]["head"]["status"] == 404  # the inner answer, nested
    cap.send("task.fence", {"id": wf, "version": v + 7, "action": action("promise.create", {
        "id": f"{wf}:5", "timeoutAt": soon})}, expect=409)  # fmt: skip
    cap.send("task.heartbeat", {"pid": pid, "tasks": [{"id": wf, "version": v}]})
    callback = action("promise.register_callback", {"awaited": remote, "awaiter": wf})
    cap.send("task.suspend", {**fence, "actions": [callback]})
    cap.send("task.get", {"id": wf})  # suspended: no ttl, no pid
    cap.send(
        "promise.settle",
        {
            "id": remote,
            "state": "rejected",
            "value": {"data": b64({"__type": "error", "message": "no"})},
        },
    )
    resumed = cap.send("task.get", {"id": wf})["task"]
    assert resumed["state"] == "pending"
    v = cap.send("task.acquire", {"id": wf, "version": resumed["version"], "pid": pid,
                                  "ttl": 60_000})["task"]["version"]  # fmt: skip
    fence = {"id": wf, "version": v}
    waits = [action("promise.register_callback", {"awaited": a, "awaiter": wf})
             for a in (remote, human)]  # fmt: skip
    preload = cap.send("task.suspend", {**fence, "actions": waits}, expect=300)
    assert isinstance(preload["preload"], list)
    cap.send("task.release", fence)
    v = cap.send("task.acquire", {"id": wf, "version": v, "pid": pid, "ttl": 60_000})["task"][
        "version"
    ]
    cap.send("task.fulfill", {"id": wf, "version": v, "action": action("promise.settle", {
        "id": wf, "state": "resolved", "value": {"data": b64([10, 20])}})})  # fmt: skip
    cap.send("task.fulfill", {"id": wf, "version": v, "action": action("promise.settle", {
        "id": wf, "state": "resolved"})}, expect=409)  # fmt: skip

    # -- task.create (top-level run), callbacks, halt/continue -----------------------------
    run = unique("my.app.run")  # dotted roots: allowed by both SDKs
    create = {"pid": pid, "ttl": 60_000, "action": action("promise.create", {
        "id": run, "timeoutAt": soon, "param": {"data": b64({"func": "f", "args": []})},
        "tags": tags(run, run, run, run, scope="global", target=any_g)})}  # fmt: skip
    claim = cap.send("task.create", create)
    cap.send("task.create", create, expect=409)  # acquired already
    rv = claim["task"]["version"]
    child = f"{run}:1"
    cap.send("task.fence", {"id": run, "version": rv, "action": action("promise.create", {
        "id": child, "timeoutAt": soon,
        "tags": tags(child, run, run, child, scope="global", external="true")})})  # fmt: skip
    cap.send("promise.register_callback", {"awaited": child, "awaiter": run})
    cap.send("promise.register_listener", {"awaited": run, "address": uni})
    cap.send("task.release", {"id": run, "version": rv})
    cap.send("task.halt", {"id": run})
    cap.send("task.continue", {"id": run})
    cap.send("task.get", {"id": unique("missing")}, expect=404)
    late = unique("late-run")
    cap.send(
        "task.create",
        {
            "pid": pid,
            "ttl": 60_000,
            "action": action(
                "promise.create",
                {"id": late, "timeoutAt": now_ms() - 1000, "tags": {"resonate:target": any_g}},
            ),
        },
    )

    # -- searches and schedules ------------------------------------------------------------
    cap.send("promise.search", {"tags": {"resonate:origin": wf}, "limit": 2})  # has a cursor
    cap.send("promise.search", {"state": "pending", "limit": 5})
    sid = unique("reports.daily")
    cap.send("schedule.create", {
        "id": sid, "cron": "0 0 1 1 *", "promiseId": "{{.id}}-{{.timestamp}}",
        "promiseTimeout": 60_000, "promiseParam": {"data": b64({"func": "f", "args": []})},
        "promiseTags": {"resonate:target": any_g}})  # fmt: skip
    bare = unique("sched")
    cap.send("schedule.create", {"id": bare, "cron": "* * * * *", "promiseId": "{{.id}}",
                                 "promiseTimeout": 1000,
                                 "promiseTags": {"resonate:target": any_g}})  # fmt: skip
    cap.send("schedule.get", {"id": sid})
    cap.send("schedule.search", {"limit": 100})
    cap.send("schedule.delete", {"id": sid})
    cap.send("schedule.delete", {"id": bare})
    cap.send("schedule.get", {"id": sid}, expect=404)


def walk_nulls(value: Any, path: str = "$") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in walk_nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in walk_nulls(v, f"{path}[{i}]")]
    return []


PROMISE_KEYS = {"id", "state", "param", "value", "tags", "timeoutAt", "createdAt"}
TASK_KEYS = {"id", "state", "version", "resumes"}
SCHEDULE_KEYS = {"id", "cron", "promiseId", "promiseTimeout", "promiseParam", "promiseTags",
                 "createdAt", "nextRunAt"}  # fmt: skip


def check_promise(record: Any) -> None:
    assert set(record) >= PROMISE_KEYS, record
    assert ("settledAt" in record) == (record["state"] != "pending"), record
    for field in ("param", "value"):
        assert isinstance(record[field], dict), record
        assert set(record[field]) <= {"headers", "data"}, record


def check_task(record: Any) -> None:
    assert set(record) >= TASK_KEYS, record
    leased = {"ttl", "pid"} & set(record)
    assert leased == ({"ttl", "pid"} if record["state"] == "acquired" else set()), record


def check_answer(kind: str, status: int, data: Any) -> None:
    if status >= 400:
        assert isinstance(data, str), (kind, data)
        return
    assert walk_nulls(data) == [], (kind, walk_nulls(data), data)
    if kind.startswith("promise.") and kind != "promise.search":
        check_promise(data["promise"])
    elif kind == "promise.search":
        for record in data["promises"]:
            check_promise(record)
    elif kind in ("task.create", "task.acquire"):
        check_task(data["task"])
        check_promise(data["promise"])
        assert isinstance(data["preload"], list), data
    elif kind == "task.get":
        check_task(data["task"])
    elif kind == "task.fence":
        inner = data["action"]
        assert set(inner) == {"kind", "head", "data"}, inner
        assert set(inner["head"]) == {"corrId", "status", "version"}, inner
        assert isinstance(data["preload"], list), data
        if inner["head"]["status"] == 200:
            check_promise(inner["data"]["promise"])
        else:
            assert isinstance(inner["data"], str), inner
    elif kind == "task.suspend":
        assert data == {} if status == 200 else isinstance(data["preload"], list), data
    elif kind == "task.fulfill":
        check_promise(data["promise"])
    elif kind.startswith("schedule.") and kind not in ("schedule.search", "schedule.delete"):
        assert set(data["schedule"]) >= SCHEDULE_KEYS, data
    elif kind == "schedule.search":
        for record in data["schedules"]:
            assert set(record) >= SCHEDULE_KEYS, record


def test_records_pass_both_sdks_validators(
    server: ServerProcess, stream: tuple[str, str, list[str]], interop_env: Environment
) -> None:
    group, pid, lines = stream
    cap = Capture(server)
    scripted_session(cap, group, pid)

    def messages() -> list[dict[str, Any]]:
        return [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]

    # an execute for the workflow (and its resumption) and an unblock for the listener
    wait_until(lambda: {m["kind"] for m in messages()} >= {"execute", "unblock"}, 60, "pushes")
    for line in list(lines):
        assert line == "" or line.startswith(("data: ", ":")), line  # no `event:` names
    for message in messages():
        assert set(message) == {"kind", "head", "data"}, message
        assert isinstance(message["head"], dict), message
        assert walk_nulls(message) == [], message
        if message["kind"] == "execute":
            assert set(message["data"]["task"]) == {"id", "version"}, message
        else:
            check_promise(message["data"]["promise"])

    kinds = set()
    for entry in cap.entries:
        response = entry["response"]
        kinds.add(entry["request"]["kind"])
        assert response["kind"] == entry["request"]["kind"]
        assert response["head"]["corrId"] == entry["request"]["head"]["corrId"]
        check_answer(response["kind"], response["head"]["status"], response["data"])
    sent_by_sdks = {
        "promise.get", "promise.create", "promise.settle", "promise.register_listener",
        "promise.register_callback", "promise.search", "task.create", "task.acquire",
        "task.fence", "task.suspend", "task.fulfill", "task.release", "task.heartbeat",
        "task.get", "task.halt", "task.continue", "schedule.create", "schedule.get",
        "schedule.delete", "schedule.search",
    }  # fmt: skip
    assert kinds == sent_by_sdks

    # One snapshot: the stream stays open, and a message arriving from here on (a resumption
    # sent again, a schedule's run) is not in what the validators were given.
    lines_in = [json.dumps(entry) for entry in cap.entries]
    lines_in += [json.dumps({"message": message}) for message in messages()]
    verdict = ts_validate(interop_env, lines_in)
    assert verdict["checked"] == len(lines_in)
    assert verdict["failures"] == [], json.dumps(verdict["failures"], indent=1)
    verdict = py_validate(interop_env, lines_in)
    assert verdict["checked"] == len(lines_in)
    assert verdict["failures"] == [], json.dumps(verdict["failures"], indent=1)


def py_validate(interop_env: Environment, lines_in: list[str]) -> Any:
    done = subprocess.run(
        [str(interop_env.python), str(OFFICIAL_PY), "validate"], input="\n".join(lines_in),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("VALIDATE "))
    return json.loads(line[len("VALIDATE ") :])


def ts_validate(interop_env: Environment, lines_in: list[str]) -> Any:
    done = subprocess.run(
        ["node", "validate.mjs"], input="\n".join(lines_in), capture_output=True, text=True,
        cwd=interop_env.node_dir, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_validators_do_reject_what_the_sdks_reject(
    server: ServerProcess, interop_env: Environment
) -> None:
    """A control for the test above: the same checks flag the faults SDK-WIRE §3.2 lists."""
    cap = Capture(server)
    wf = unique("wf")
    cap.send("promise.create", {"id": wf, "timeoutAt": now_ms() + HOUR,
                                "tags": {"resonate:target": "poll://any@g"}})  # fmt: skip
    cap.send("task.acquire", {"id": wf, "version": 0, "pid": "p", "ttl": 60_000})
    cap.send("task.get", {"id": wf})
    created, claim, got = cap.entries
    good = [json.dumps(entry) for entry in cap.entries]
    assert ts_validate(interop_env, good)["failures"] == []

    def fault(entry: dict[str, Any], change: Any) -> str:
        copy = json.loads(json.dumps(entry))
        change(copy["response"])
        return json.dumps(copy)

    faults = [
        fault(claim, lambda r: r["data"]["promise"].__setitem__("settledAt", None)),
        fault(claim, lambda r: r["data"]["promise"]["param"].__setitem__("data", None)),
        fault(claim, lambda r: r["data"].pop("preload")),
        fault(claim, lambda r: r["head"].__setitem__("corrId", "other")),
        fault(created, lambda r: r["data"]["promise"]["value"].__setitem__("headers", None)),
        fault(got, lambda r: r["data"]["task"].pop("resumes")),
        fault(got, lambda r: r["data"]["task"].__setitem__("pid", None)),
        json.dumps({"message": {"kind": "execute", "data": {"task": {"id": wf, "version": 1}}}}),
    ]
    verdict = ts_validate(interop_env, faults)
    assert {f["index"] for f in verdict["failures"]} == set(range(len(faults))), verdict

    # the Python SDK tolerates nulls, but not a record of the wrong shape
    assert py_validate(interop_env, good)["failures"] == []
    wrong = [
        fault(claim, lambda r: r["data"]["promise"].__setitem__("state", "done")),
        fault(claim, lambda r: r["data"]["preload"].append({"id": 1})),
        json.dumps({"message": {"kind": "executes", "head": {}, "data": {"task": {"id": wf}}}}),
    ]
    verdict = py_validate(interop_env, wrong)
    assert {f["index"] for f in verdict["failures"]} == {0, 1, 2}, verdict


def test_one_heartbeat_keeps_leases_of_several_origins(server: ServerProcess) -> None:
    """The official SDKs' heartbeat names every task the worker holds (SDK-WIRE §2.2): tasks
    of different origins in one ``task.heartbeat`` are all extended, none is refused."""
    cap = Capture(server)
    roots = [unique("hb"), unique("hb")]
    for root in roots:
        cap.send("promise.create", {"id": root, "timeoutAt": now_ms() + HOUR,
                                    "tags": {"resonate:target": "poll://any@nobody"}})  # fmt: skip
        cap.send("task.acquire", {"id": root, "version": 0, "pid": "w", "ttl": 2500})
    beat = {"pid": "w", "tasks": [{"id": root, "version": 1} for root in roots]}
    deadline = time.monotonic() + 5.5  # two lease lengths, each bridged by heartbeats
    while time.monotonic() < deadline:
        assert cap.send("task.heartbeat", beat) == {}
        time.sleep(0.3)
    for root in roots:
        assert cap.send("task.get", {"id": root})["task"]["state"] == "acquired"
    # and without heartbeats the leases do lapse: the check above can fail
    wait_until(
        lambda: all(
            cap.send("task.get", {"id": root})["task"]["state"] == "pending" for root in roots
        ),
        30,
        "the leases to lapse",
    )
