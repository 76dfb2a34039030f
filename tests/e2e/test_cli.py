"""The ``sustain`` CLI against a real server: promises, errors, invoke, tree (PROTOCOL.md §7.3).

Each test runs the installed ``sustain`` script in a subprocess (``cli_harness``); ids are
unique per test, so the module shares one ``sustain dev`` server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.cli_harness import (
    FAR,
    Server,
    decoded,
    encoded,
    fails,
    ok,
    ok_json,
    rpc,
    serving,
    sustain,
    uid,
)
from tests.servers import free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory)


# -- promises ---------------------------------------------------------------------------------


def test_promise_create_get_human_and_json(server: Server) -> None:
    pid = uid()
    out = ok(
        "promises",
        "create",
        pid,
        "--timeout",
        "1h",
        "--raw",
        "--param",
        json.dumps({"data": encoded({"n": 1}), "headers": {"h": "v"}}),
        "--tags",
        '{"k": "v"}',
        server=server,
    ).out
    assert f"Promise {pid}" in out
    assert "pending" in out
    assert '{"n": 1}' in out  # param data shown decoded
    assert "k=v" in out

    promise = ok_json("promises", "get", pid, server=server)["promise"]
    assert promise["id"] == pid
    assert promise["state"] == "pending"
    assert json.loads(decoded(promise["param"])) == {"n": 1}
    assert promise["param"]["headers"] == {"h": "v"}
    assert promise["tags"] == {"k": "v"}
    assert promise["timeoutAt"] - promise["createdAt"] <= 3_600_000

    # --json after the subcommand is the same as before it
    leaf = ok("promises", "get", pid, "--json", server=server).json()
    assert leaf == {"promise": promise}
    env = sustain("promises", "get", pid, server=server, SUSTAIN_JSON="1")
    assert env.json() == {"promise": promise}


def test_user_data_is_not_rich_markup(server: Server) -> None:
    pid = uid("[red]x:smile:")
    out = ok("promises", "create", pid, "-t", "1h", "--tags", '{"[b]": "[/b]"}', server=server).out
    assert pid in out
    assert "[b]=[/b]" in out
    assert pid in ok("tree", pid, server=server).out


def test_promise_settle_commands(server: Server) -> None:
    for command, state in (
        ("resolve", "resolved"),
        ("reject", "rejected"),
        ("cancel", "rejected_canceled"),
    ):
        pid = uid()
        rpc(server, "promise.create", {"id": pid, "timeoutAt": FAR})
        settled = ok_json("promises", command, pid, "--value", "done", server=server)
        assert settled["promise"]["state"] == state
        assert decoded(settled["promise"]["value"]) == '"done"'  # a JSON string
        assert "settledAt" in settled["promise"]


def test_promise_value_non_string_data_is_json_stringified(server: Server) -> None:
    pid = uid()
    rpc(server, "promise.create", {"id": pid, "timeoutAt": FAR})
    out = ok("promises", "resolve", pid, "--value", '[1, "a"]', server=server).out
    assert '[1, "a"]' in out
    promise = ok_json("promises", "get", pid, server=server)["promise"]
    assert json.loads(decoded(promise["value"])) == [1, "a"]


def test_promise_search_tags_limit_cursor(server: Server) -> None:
    tag = uid("tag")
    ids = sorted(uid() for _ in range(3))
    for pid in ids:
        rpc(server, "promise.create", {"id": pid, "timeoutAt": FAR, "tags": {"grp": tag}})
    first = ok_json(
        "promises", "search", "--tags", json.dumps({"grp": tag}), "--limit", "2", server=server
    )
    assert [p["id"] for p in first["promises"]] == ids[:2]
    assert isinstance(first["cursor"], str)
    rest = ok_json(
        "promises",
        "search",
        "--tags",
        json.dumps({"grp": tag}),
        "--cursor",
        first["cursor"],
        server=server,
    )
    assert [p["id"] for p in rest["promises"]] == ids[2:]
    assert "cursor" not in rest

    human = ok("promises", "search", "--tags", json.dumps({"grp": tag}), server=server).out
    assert all(pid in human for pid in ids)
    pending = ok_json(
        "promises",
        "search",
        "--state",
        "resolved",
        "--tags",
        json.dumps({"grp": tag}),
        server=server,
    )
    assert pending["promises"] == []
    assert (
        "No promises."
        in ok(
            "promises",
            "search",
            "--state",
            "resolved",
            "--tags",
            json.dumps({"grp": tag}),
            server=server,
        ).out
    )


def test_register_callback_and_listener(server: Server) -> None:
    root = uid()
    awaited = f"{root}.1"
    target = {"resonate:target": "poll://any@cli"}
    rpc(server, "promise.create", {"id": root, "timeoutAt": FAR, "tags": target})
    rpc(server, "promise.create", {"id": awaited, "timeoutAt": FAR})
    answer = ok_json("promises", "register-callback", awaited, root, server=server)
    assert answer["promise"]["id"] == awaited
    answer = ok_json("promises", "register-listener", awaited, "poll://any@cli", server=server)
    assert answer["promise"]["state"] == "pending"
    line = fails("promises", "register-listener", awaited, "not an address", server=server)
    assert line == "Error: Invalid listener address"


# -- errors -----------------------------------------------------------------------------------


def test_not_found_is_one_line(server: Server) -> None:
    missing = uid()
    for noun in ("promise", "task", "schedule"):
        line = fails(f"{noun}s", "get", missing, server=server)
        assert line == f"Error: {noun.title()} not found: {missing}"


@pytest.mark.parametrize("duration", ["0s", "10", "5x", "1.5h", ""])
def test_bad_duration_is_one_line(server: Server, duration: str) -> None:
    line = fails("promises", "create", uid(), "--timeout", duration, server=server)
    assert line.startswith("Error: --timeout: invalid duration")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tags", "{bad"], "--tags is not valid JSON"),
        (["--tags", "[1]"], "--tags must be a JSON object of strings"),
        (["--tags", '{"a": 1}'], "--tags must be a JSON object of strings"),
        (["--raw", "--param", "nope"], "--param is not valid JSON"),
        (
            ["--raw", "--param", '{"dat": 1}'],
            "--param with --raw takes an object with 'headers' and/or 'data' (base64)",
        ),
        (["--raw", "--param", '{"data": {"n": 1}}'], "--param with --raw needs 'data' as base64"),
        (["--param", "1", "--param-file", "x"], "use either --param or --param-file"),
        (["--param-file", "/nonexistent/v.json"], "--param-file: cannot read '/nonexistent"),
    ],
)
def test_bad_json_is_one_line(server: Server, args: list[str], message: str) -> None:
    line = fails("promises", "create", uid(), "-t", "1h", *args, server=server)
    assert line.startswith(f"Error: {message}")


def test_server_validation_error_is_one_line(server: Server) -> None:
    line = fails(
        "promises",
        "create",
        uid(),
        "-t",
        "1h",
        "--tags",
        '{"resonate:target": "nope"}',
        server=server,
    )
    assert line == "Error: Invalid resonate:target address"


def test_unreachable_server_exits_3() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    line = fails("promises", "get", "x", code=3, SUSTAIN_SERVER=url)
    assert line.startswith(f"Error: cannot reach the server at {url}")
    line = fails("-S", url, "tree", "x", code=3)
    assert "cannot reach" in line


def test_server_flag_and_url_env(server: Server) -> None:
    pid = uid()
    assert sustain("-S", server.url, "promises", "create", pid, "-t", "1h").code == 0
    assert sustain("--json", "promises", "get", pid, SUSTAIN_URL=server.url).json()["promise"]


def test_not_a_sustain_server(server: Server) -> None:
    line = fails("-S", f"{server.url}/nowhere", "promises", "get", "x")
    assert "unexpected answer" in line


def test_invalid_server_url() -> None:
    assert fails("-S", "localhost", "promises", "get", "x").startswith("Error: invalid server URL")


def test_usage_errors_exit_2() -> None:
    result = sustain("promises", "create", "x")  # --timeout missing
    assert result.code == 2
    assert "Missing option '-t' / '--timeout'" in result.err
    result = sustain("promises", "search", "--state", "bogus")
    assert result.code == 2
    assert "Traceback" not in result.err


def test_help_lists_every_command() -> None:
    out = sustain("--help").out
    for name in ("serve", "dev", "promises", "tasks", "schedules", "invoke", "tree"):
        assert name in out
    tasks = sustain("tasks", "--help").out
    for name in (
        "get",
        "create",
        "claim",
        "fence",
        "heartbeat",
        "suspend",
        "complete",
        "release",
        "halt",
        "continue",
        "search",
    ):
        assert f"  {name}" in tasks


# -- invoke -----------------------------------------------------------------------------------


def test_invoke_payload_target_and_delay(server: Server) -> None:
    pid = uid()
    promise = ok_json(
        "invoke",
        pid,
        "-f",
        "greet",
        "--arg",
        '"bob"',
        "--arg",
        "3",
        "--arg",
        "plain",
        "--target",
        "workers",
        "--timeout",
        "1h",
        "--delay",
        "10m",
        server=server,
    )["promise"]
    assert json.loads(decoded(promise["param"])) == {
        "func": "greet",
        "args": ["bob", 3, "plain"],
        "kwargs": {},
        "version": 1,
    }
    assert promise["tags"]["resonate:target"] == "poll://any@workers"
    delay = int(promise["tags"]["resonate:delay"])
    assert promise["timeoutAt"] - delay == 3_600_000

    other = ok_json(
        "invoke",
        uid(),
        "--func",
        "f",
        "--json-args",
        '[{"a": 1}]',
        "--version",
        "2",
        "--target",
        "poll://uni@g/one",
        server=server,
    )["promise"]
    assert json.loads(decoded(other["param"]))["args"] == [{"a": 1}]
    assert json.loads(decoded(other["param"]))["version"] == 2
    # a version named on the command line pins the execution to it (protocol/versions.py)
    assert other["tags"] == {
        "resonate:target": "poll://uni@g/one",
        "sustain:function": "f",
        "sustain:version": "2",
    }
    assert "sustain:version" not in promise["tags"]  # no --version: not pinned

    line = fails("invoke", uid(), "-f", "f", "--arg", "1", "--json-args", "[]", server=server)
    assert "not both" in line


# -- tree -------------------------------------------------------------------------------------


def _payload(func: str) -> str:
    return json.dumps({"func": func, "args": []})


def test_tree_draws_the_call_graph(server: Server) -> None:
    root = uid("root")
    ok("invoke", root, "-f", "main", "--target", "g", server=server)

    def child(pid: str, parent: str, *args: str, **tags: str) -> None:
        all_tags = {"resonate:origin": root, "resonate:parent": parent, **tags}
        ok(
            "promises",
            "create",
            pid,
            "-t",
            "1h",
            "--tags",
            json.dumps(all_tags),
            *args,
            server=server,
        )

    child(
        f"{root}.1",
        root,
        "--param",
        _payload("fetch"),
        **{"resonate:scope": "global", "resonate:target": "poll://any@g"},
    )
    child(f"{root}.1.1", f"{root}.1", "--param", _payload("parse"), **{"resonate:scope": "local"})
    child(f"{root}.2", root, **{"resonate:timer": "true"})
    ok("promises", "resolve", f"{root}.1.1", server=server)

    out = ok("tree", root, server=server).out.splitlines()
    assert root in out[0]
    assert "main" in out[0]
    assert "pending" in out[0]
    text = "\n".join(out)
    rpc = next(line for line in out if f"{root}.1 " in line)
    run = next(line for line in out if f"{root}.1.1 " in line)
    sleep = next(line for line in out if f"{root}.2 " in line)
    assert "(rpc fetch)" in rpc
    assert "(run parse)" in run
    assert "resolved" in run
    assert "(sleep)" in sleep
    assert "until " in sleep
    # children in creation order, the grandchild indented under its parent
    assert out.index(rpc) < out.index(run) < out.index(sleep)
    assert run.index(f"{root}.1.1") > rpc.index(f"{root}.1")
    assert "Error" not in text

    graph = ok_json("tree", root, server=server)
    assert graph["promise"]["id"] == root
    assert [c["promise"]["id"] for c in graph["children"]] == [f"{root}.1", f"{root}.2"]
    assert [c["promise"]["id"] for c in graph["children"][0]["children"]] == [f"{root}.1.1"]

    # A promise inside the execution: the part of the tree below it.
    sub = ok_json("tree", f"{root}.1", server=server)
    assert sub["promise"]["id"] == f"{root}.1"
    assert [c["promise"]["id"] for c in sub["children"]] == [f"{root}.1.1"]
    assert sub["children"][0]["children"] == []


def test_tree_pages_through_large_executions(server: Server) -> None:
    root = uid("big")
    ok(
        "promises",
        "create",
        root,
        "-t",
        "1h",
        "--tags",
        json.dumps({"resonate:origin": root}),
        server=server,
    )
    # 101 children through the protocol directly (faster than 101 CLI processes).
    with httpx.Client(base_url=server.url) as http:
        for i in range(101):
            body = {
                "kind": "promise.create",
                "head": {"corrId": str(i), "version": "2026-04-01"},
                "data": {
                    "id": f"{root}.{i:03}",
                    "timeoutAt": FAR,
                    "tags": {"resonate:origin": root, "resonate:parent": root},
                },
            }
            assert http.post("/", json=body).status_code == 200
    graph = ok_json("tree", root, server=server)
    assert len(graph["children"]) == 101


def test_tree_of_unknown_promise(server: Server) -> None:
    missing = uid()
    assert fails("tree", missing, server=server) == f"Error: Promise not found: {missing}"
