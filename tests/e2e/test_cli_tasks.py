"""The ``sustain tasks`` and ``sustain schedules`` commands against a real server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.cli_harness import (
    FAR,
    Server,
    decoded,
    fails,
    ok,
    ok_json,
    rpc,
    serving,
    sustain,
    uid,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory)


# -- tasks ------------------------------------------------------------------------------------


def test_task_lifecycle(server: Server) -> None:
    tid = uid()
    created = ok_json(
        "tasks",
        "create",
        tid,
        "--pid",
        "w1",
        "--ttl",
        "1m",
        "-t",
        "1h",
        "--param",
        "x",
        server=server,
    )
    assert created["task"] == {
        "id": tid,
        "state": "acquired",
        "version": 1,
        "resumes": 0,
        "ttl": 60_000,
        "pid": "w1",
    }
    assert created["promise"]["tags"]["resonate:target"] == "poll://any@default"
    assert decoded(created["promise"]["param"]) == '"x"'
    human = ok("tasks", "get", tid, server=server).out
    assert "acquired" in human
    assert "w1" in human

    assert (
        ok_json(
            "tasks",
            "heartbeat",
            "--pid",
            "w1",
            "--tasks",
            json.dumps([{"id": tid, "version": 1}]),
            server=server,
        )
        == {}
    )

    child = f"{tid}.1"
    rpc(server, "promise.create", {"id": child, "timeoutAt": FAR})
    actions = json.dumps([{"awaited": child, "awaiter": tid}])
    out = ok("tasks", "suspend", tid, "--version", "1", "--actions", actions, server=server).out
    assert "Task suspended." in out
    assert ok_json("tasks", "get", tid, server=server)["task"]["state"] == "suspended"

    rpc(server, "promise.settle", {"id": child, "state": "resolved"})
    pending = ok_json("tasks", "search", "--state", "pending", "--limit", "1000", server=server)
    assert tid in [t["id"] for t in pending["tasks"]]

    claimed = ok_json(
        "tasks", "claim", tid, "--pid", "w2", "--version", "1", "--ttl", "30s", server=server
    )
    assert claimed["task"]["version"] == 2
    assert claimed["task"]["pid"] == "w2"

    # An awaited promise is already settled: 300, not an error, and the preload is shown.
    result = sustain("tasks", "suspend", tid, "--version", "2", "--actions", actions, server=server)
    assert result.code == 0, result
    assert "already settled" in result.out
    json_result = sustain(
        "--json", "tasks", "suspend", tid, "--version", "2", "--actions", actions, server=server
    )
    assert json_result.code == 0
    assert json_result.json() == {"preload": []}

    fenced = ok_json(
        "tasks",
        "fence",
        tid,
        "--version",
        "2",
        "--action",
        json.dumps({"kind": "promise.create", "data": {"id": f"{tid}.2", "timeoutAt": FAR}}),
        server=server,
    )
    assert fenced["action"]["head"]["status"] == 200
    assert fenced["action"]["data"]["promise"]["id"] == f"{tid}.2"

    done = ok_json(
        "tasks",
        "complete",
        tid,
        "--version",
        "2",
        "--action",
        json.dumps({"id": tid, "state": "resolved"}),
        server=server,
    )
    assert done["promise"]["state"] == "resolved"
    assert ok_json("tasks", "get", tid, server=server)["task"]["state"] == "fulfilled"
    assert fails("tasks", "halt", tid, server=server) == f"Error: Task is fulfilled: {tid}"


def test_task_release_halt_continue(server: Server) -> None:
    tid = uid()
    ok(
        "tasks",
        "create",
        tid,
        "--pid",
        "w",
        "--ttl",
        "1m",
        "-t",
        "1h",
        "--target",
        "poll://any@elsewhere",
        server=server,
    )
    assert "released" in ok("tasks", "release", tid, "--version", "1", server=server).out
    assert fails("task", "release", tid, "--version", "1", server=server) == (
        f"Error: Task version mismatch or invalid state: {tid}"
    )
    assert "halted" in ok("tasks", "halt", tid, server=server).out
    assert ok_json("tasks", "get", tid, server=server)["task"]["state"] == "halted"
    assert "continued" in ok("tasks", "continue", tid, server=server).out
    assert ok_json("tasks", "get", tid, server=server)["task"]["state"] == "pending"
    assert fails("tasks", "continue", tid, server=server) == f"Error: Task is not halted: {tid}"


def test_task_bad_action_json(server: Server) -> None:
    line = fails("tasks", "complete", "x", "--version", "1", "--action", "{", server=server)
    assert line.startswith("Error: --action is not valid JSON")
    line = fails("tasks", "fence", "x", "--version", "1", "--action", '{"data": {}}', server=server)
    assert "needs a 'kind'" in line
    line = fails("tasks", "heartbeat", "--pid", "p", "--tasks", "{}", server=server)
    assert line == "Error: --tasks must be a JSON array"


# -- schedules --------------------------------------------------------------------------------


def test_schedule_commands(server: Server) -> None:
    sid = uid("sched")
    tags = json.dumps({"resonate:target": "poll://any@default", "owner": sid})
    created = ok_json(
        "schedules",
        "create",
        sid,
        "--cron",
        "0 9 * * 1-5",
        "--promise-id",
        "{{.id}}.{{.timestamp}}",
        "--promise-timeout",
        "1h",
        "--promise-tags",
        tags,
        "--promise-param",
        '{"func": "report"}',
        server=server,
    )["schedule"]
    assert created["promiseTimeout"] == 3_600_000
    assert created["cron"] == "0 9 * * 1-5"
    assert json.loads(decoded(created["promiseParam"])) == {"func": "report"}

    human = ok("schedules", "get", sid, server=server).out
    assert "0 9 * * 1-5" in human
    assert "1h" in human
    found = ok_json("schedules", "search", "--tags", json.dumps({"owner": sid}), server=server)
    assert [s["id"] for s in found["schedules"]] == [sid]

    assert "deleted" in ok("schedules", "delete", sid, server=server).out
    assert fails("schedules", "delete", sid, server=server) == f"Error: Schedule not found: {sid}"
    line = fails(
        "schedules",
        "create",
        uid("s"),
        "--cron",
        "nope",
        "--promise-id",
        "x",
        "--promise-timeout",
        "1m",
        "--promise-tags",
        tags,
        server=server,
    )
    assert line == ("Error: invalid --cron 'nope': expected 5 or 6 fields, got 1")
