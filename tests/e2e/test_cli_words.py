"""Issue 19, "the CLI and UI in the user's words": every command through the real ``sustain``
binary against a real ``sustain dev``, and a real ``sustain worker`` where work must run.

The worker serves ``tests/e2e/words_app.py``, whose ``Sustain`` is built for embedded mode:
``-S`` must point it at the server.  The module fixture stops it (SIGTERM, then SIGKILL)
even when a test fails.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sustain.engine.cron import Cron
from tests.e2e.cli_harness import (
    SUSTAIN,
    Server,
    clean_env,
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
from tests.scenarios.processes import Proc, wait_until

APP = "tests.e2e.words_app:sustain"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory)


@dataclass
class Worker:
    group: str
    proc: Proc
    db: Path


@pytest.fixture(scope="module")
def worker(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    tmp = tmp_path_factory.mktemp("worker")
    group = uid("words")
    db = tmp / "words.db"
    proc = Proc(
        [str(SUSTAIN), "-S", server.url, "worker", APP, "--group", group],
        tmp / "worker.log",
        {"WORDS_DB": str(db)},
    )
    try:
        wait_until(lambda: "serving group" in proc.output() or not proc.alive(), 60, "worker")
        assert proc.alive(), proc.output()
        yield Worker(group, proc, db)
    finally:
        proc.stop()


def promise(server: Server, id: str) -> dict[str, Any]:
    return dict(rpc(server, "promise.get", {"id": id})["promise"])


def exists(server: Server, id: str) -> bool:
    body = {"kind": "promise.get", "head": {"corrId": uid(), "version": "2026-04-01"},
            "data": {"id": id}}  # fmt: skip
    return bool(server.post(json.dumps(body)).json()["head"]["status"] == 200)


def invocation_of(p: dict[str, Any]) -> Any:
    return json.loads(decoded(p["param"]))


# -- 1. values as users write them --------------------------------------------------------------


def test_value_is_a_json_value_encoded_for_the_user(server: Server) -> None:
    pid = uid()
    rpc(server, "promise.create", {"id": pid, "timeoutAt": 2**53})
    out = ok("promises", "resolve", pid, "--value", '{"ok": true}', server=server).out
    assert '{"ok": true}' in out
    assert json.loads(decoded(promise(server, pid)["value"])) == {"ok": True}


def test_value_plain_text_file_and_raw(server: Server, tmp_path: Path) -> None:
    text, from_file, raw = uid(), uid(), uid()
    for pid in (text, from_file, raw):
        rpc(server, "promise.create", {"id": pid, "timeoutAt": 2**53})
    ok("promises", "reject", text, "--value", "budget exceeded", server=server)
    assert decoded(promise(server, text)["value"]) == '"budget exceeded"'

    path = tmp_path / "value.json"
    path.write_text('{"rows": [1, 2, 3]}')
    ok("promises", "resolve", from_file, "--value-file", str(path), server=server)
    assert json.loads(decoded(promise(server, from_file)["value"])) == {"rows": [1, 2, 3]}

    wire = json.dumps({"headers": {"h": "v"}, "data": encoded([1])})
    ok("promises", "resolve", raw, "--raw", "--value", wire, server=server)
    assert promise(server, raw)["value"] == {"headers": {"h": "v"}, "data": encoded([1])}


def test_value_errors_name_the_option(server: Server, tmp_path: Path) -> None:
    pid = uid()
    bad_raw = fails("promises", "resolve", pid, "--raw", "--value", '{"data": {"ok": 1}}',
                    server=server)  # fmt: skip
    assert bad_raw.startswith("Error: --value with --raw needs 'data' as base64 text")
    both = fails("promises", "resolve", pid, "--value", "1", "--value-file", "x", server=server)
    assert both == "Error: use either --value or --value-file, not both"
    missing = fails("promises", "resolve", pid, "--value-file", str(tmp_path / "no.json"),
                    server=server)  # fmt: skip
    assert missing.startswith("Error: --value-file: cannot read ")
    assert "No such file" in missing


def test_help_says_what_value_takes() -> None:
    text = sustain("promises", "resolve", "--help").out
    assert "JSON value" in text
    assert "--value-file" in text
    assert "--raw" in text
    assert "base64" in text  # only as the --raw wire form


# -- 3. invoke: arguments, same id, --wait ------------------------------------------------------


def test_invoke_arguments_as_users_write_them(server: Server, tmp_path: Path) -> None:
    pid = uid()
    ok("invoke", pid, "-f", "work", "--arg", "42", "--arg", "ada", "--kwarg", "rush=true",
       "--kwarg", 'tags=["a"]', "--target", "nowhere", server=server)  # fmt: skip
    p = promise(server, pid)
    assert invocation_of(p) == {
        "func": "work", "args": [42, "ada"], "kwargs": {"rush": True, "tags": ["a"]},
        "version": 1,
    }  # fmt: skip
    assert p["tags"]["resonate:target"] == "poll://any@nowhere"

    path = tmp_path / "args.json"
    path.write_text('{"args": [1], "kwargs": {"x": {"y": 2}}}')
    other = uid()
    ok("invoke", other, "-f", "work", "--args-file", str(path), "--target", "nowhere",
       server=server)  # fmt: skip
    assert invocation_of(promise(server, other))["kwargs"] == {"x": {"y": 2}}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kwarg", "no-equals"], "Error: --kwarg takes NAME=VALUE"),
        (["--kwarg", "1x=2"], "Error: --kwarg takes NAME=VALUE"),
        (["--arg", "1", "--json-args", "[2]"], "Error: use either --arg or --json-args"),
        (["--args-file", "x.json", "--arg", "1"], "Error: use either --args-file or"),
        (["--json-args", "{}"], "Error: --json-args must be a JSON array"),
    ],
)
def test_invoke_argument_errors(server: Server, args: list[str], message: str) -> None:
    assert fails("invoke", uid(), "-f", "work", *args, server=server).startswith(message)


def test_same_id_other_arguments_warns_or_fails_with_strict(server: Server) -> None:
    pid = uid()
    ok("invoke", pid, "-f", "work", "--arg", "1", "--target", "nowhere", server=server)
    again = sustain("invoke", pid, "-f", "work", "--arg", "1", "--target", "nowhere",
                    server=server)  # fmt: skip
    assert (again.code, again.err) == (0, "")  # the same call: no warning
    other = sustain("invoke", pid, "-f", "work", "--arg", "2", "--target", "nowhere",
                    server=server)  # fmt: skip
    assert other.code == 0
    assert other.err.startswith(f"Warning: promise '{pid}' already exists with another call: ")
    assert "args [1] (this call: [2])" in other.err
    strict = fails("invoke", pid, "-f", "work", "--arg", "2", "--strict", server=server)
    assert "args [1] (this call: [2]) (--strict)" in strict


def test_invoke_wait_prints_the_result(server: Server, worker: Worker) -> None:
    pid = uid()
    result = ok("invoke", pid, "-f", "greet", "--arg", "ada", "--kwarg", "punctuation=?",
                "--target", worker.group, "--wait", server=server)  # fmt: skip
    assert json.loads(result.out) == "hello ada?"
    as_json = ok_json("invoke", pid, "-f", "greet", "--arg", "ada", "--kwarg", "punctuation=?",
                      "--target", worker.group, "--wait", server=server)  # fmt: skip
    assert as_json["promise"]["state"] == "resolved"


def test_invoke_wait_rejected_exits_1_with_the_error(server: Server, worker: Worker) -> None:
    pid = uid()
    line = fails("invoke", pid, "-f", "fail", "--arg", "boom", "--target", worker.group, "--wait",
                 server=server)  # fmt: skip
    assert line == f"Error: {pid} failed: ValueError: boom"


def test_invoke_wait_of_a_function_no_worker_has(server: Server, worker: Worker) -> None:
    pid = uid()
    line = fails("invoke", pid, "-f", "missing", "--target", worker.group, "--wait",
                 server=server)  # fmt: skip
    assert line == (  # the worker pauses it (on_code_mismatch="pause", the default)
        f"Error: {pid}: paused; no worker of group {worker.group!r} has function "
        "'missing' (deploy it there and it resumes)"
    )


def test_invoke_wait_with_no_worker_notes_it_and_times_out(server: Server) -> None:
    pid, group = uid(), uid("empty")
    result = sustain("invoke", pid, "-f", "greet", "--target", group, "--wait", "--timeout", "7s",
                     server=server)  # fmt: skip
    assert result.code == 1
    assert result.out == ""
    note, error = result.err.splitlines()
    assert note == (
        f"Note: no worker of group {group!r} has picked up {pid} after 5s (is `sustain worker "
        f"... --group {group}` running?); still waiting"
    )
    assert error.startswith(f"Error: {pid} timed out at ")


def test_invoke_without_wait_documents_it() -> None:
    text = sustain("invoke", "--help").out
    assert "--wait" in text
    assert "no worker" in text


# -- 2. schedules -----------------------------------------------------------------------------


def test_schedule_of_a_function_with_defaults(server: Server) -> None:
    name = uid("standup")
    created = ok_json("schedules", "create", name, "--cron", "0 9 * * 1-5", "-f", "remind",
                      "--arg", "team", "--target", "workers", server=server)  # fmt: skip
    created = created["schedule"]
    assert created["promiseId"] == "{{.id}}.{{.timestamp}}"
    assert created["promiseTimeout"] == 86_400_000
    assert created["promiseTags"] == {"resonate:target": "poll://any@workers"}
    assert json.loads(decoded(created["promiseParam"])) == {
        "func": "remind", "args": ["team"], "kwargs": {}, "version": 1,
    }  # fmt: skip
    human = ok("schedules", "get", name, server=server).out
    assert "target" in human
    assert "poll://any@workers" in human


def test_schedules_next_prints_the_next_firings(server: Server) -> None:
    name = uid("weekday")
    ok("schedules", "create", name, "--cron", "0 9 * * 1-5", "-f", "remind", server=server)
    answer = ok_json("schedules", "next", name, "-n", "5", server=server)
    assert answer["cron"] == "0 9 * * 1-5"
    times = answer["next"]
    assert len(times) == 5
    assert times == sorted(times)
    cron = Cron.parse("0 9 * * 1-5")
    for earlier, later in itertools.pairwise(times):
        assert cron.next_after(earlier) == later
    for at in times:
        moment = datetime.datetime.fromtimestamp(at / 1000, tz=datetime.UTC)
        assert (moment.hour, moment.minute, moment.weekday() < 5) == (9, 0, True)
    lines = ok("schedules", "next", name, "-n", "3", server=server).out.splitlines()
    assert lines[0] == f"Next firings of {name} (0 9 * * 1-5, UTC):"
    assert len(lines) == 4
    assert all(line.strip().endswith(":00:00.000Z") for line in lines[1:])
    missing = uid()
    assert fails("schedules", "next", missing, server=server) == (
        f"Error: Schedule not found: {missing}"
    )


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 9 * * 8", "day-of-week: 8 is out of range 0-7"),
        ("61 * * * *", "minute: 61 is out of range 0-59"),
        ("0 9 * *", "expected 5 or 6 fields, got 4"),
        ("*/0 * * * *", "minute: step must be positive in '*/0'"),
    ],
)
def test_cron_errors_say_which_field_and_why(server: Server, cron: str, reason: str) -> None:
    line = fails("schedules", "create", uid(), "--cron", cron, "-f", "remind", server=server)
    assert line == f"Error: invalid --cron {cron!r}: {reason}"


def test_cron_that_never_fires_is_refused_by_the_server(server: Server) -> None:
    line = fails("schedules", "create", uid(), "--cron", "0 0 30 2 *", "-f", "x", server=server)
    assert line == (
        "Error: invalid --cron '0 0 30 2 *': the server refused it (Invalid cron expression); "
        "does it ever fire within five years?"
    )


def test_schedule_argument_errors(server: Server) -> None:
    line = fails("schedules", "create", uid(), "--cron", "* * * * *", "--arg", "1", server=server)
    assert line == "Error: --arg, --kwarg, --json-args and --args-file need -f FUNC"
    line = fails("schedules", "create", uid(), "--cron", "* * * * *", "-f", "x",
                 "--promise-param", "1", server=server)  # fmt: skip
    assert line == "Error: use either -f with --arg/--kwarg or --promise-param, not both"


# -- 6. tables, tags, paging --------------------------------------------------------------------


def test_internal_tags_hidden_unless_all_tags(server: Server) -> None:
    pid = uid()
    tags = {"resonate:origin": pid, "resonate:scope": "global", "team": "ops"}
    rpc(server, "promise.create", {"id": pid, "timeoutAt": 2**53, "tags": tags})
    out = ok("promises", "get", pid, server=server).out
    assert "team=ops" in out
    assert "resonate:origin" not in out
    assert "(2 resonate:* hidden; --all-tags shows them)" in out
    shown = ok("promises", "get", pid, "--all-tags", server=server).out
    assert f"resonate:origin={pid}" in shown
    listed = ok("promises", "search", "--tags", '{"team": "ops"}', server=server).out
    assert "resonate:scope" not in listed


def test_tables_are_not_cut_when_piped(server: Server) -> None:
    long_id = uid("x" * 150)
    rpc(server, "promise.create", {"id": long_id, "timeoutAt": 2**53, "tags": {"k": long_id}})
    env = clean_env(SUSTAIN_SERVER=server.url)
    del env["COLUMNS"]  # a pipe, as a user's `| grep` would be
    for args in (["promises", "search", "--tags", json.dumps({"k": long_id})],
                 ["promises", "get", long_id]):  # fmt: skip
        done = subprocess.run([str(SUSTAIN), *args], capture_output=True, text=True, env=env,
                              timeout=60, check=True)  # fmt: skip
        assert any(long_id in line for line in done.stdout.splitlines()), done.stdout


def test_search_pages_with_cursor_or_all(server: Server) -> None:
    tag = json.dumps({"page": (mark := uid())})
    ids = sorted(uid() for _ in range(5))
    for pid in ids:
        rpc(server, "promise.create", {"id": pid, "timeoutAt": 2**53, "tags": {"page": mark}})
    page = ok("promises", "search", "--tags", tag, "--limit", "2", server=server).out
    cursor_line = page.splitlines()[-1]
    assert cursor_line.startswith("Next page: --cursor ")
    cursor = cursor_line.split()[3]
    second = ok_json("promises", "search", "--tags", tag, "--limit", "2", "--cursor", cursor,
                     server=server)  # fmt: skip
    assert [p["id"] for p in second["promises"]] == ids[2:4]
    everything = ok_json("promises", "search", "--tags", tag, "--limit", "2", "--all",
                         server=server)  # fmt: skip
    assert [p["id"] for p in everything["promises"]] == ids
    assert "cursor" not in everything
    tasks = ok_json("tasks", "search", "--limit", "1", "--all", server=server)
    assert "cursor" not in tasks


def test_errors_name_the_ids(server: Server) -> None:
    missing = uid()
    assert fails("promises", "resolve", missing, "--value", "1", server=server) == (
        f"Error: Promise not found: {missing}"
    )
    assert fails("tasks", "get", missing, server=server) == f"Error: Task not found: {missing}"


# -- 4. worker ----------------------------------------------------------------------------------


def test_worker_honours_server_flag_and_says_where(server: Server, worker: Worker) -> None:
    banner = next(line for line in worker.proc.output().splitlines() if "serving group" in line)
    assert f"serving group {worker.group} (remote {server.url})" in banner
    assert "functions: approval v1, chain v1, fail v1, greet v1" in banner
    assert not worker.db.exists()  # the app's embedded store was never opened


def test_worker_without_server_flag_keeps_the_app_embedded(tmp_path: Path) -> None:
    db = tmp_path / "embedded.db"
    proc = Proc([str(SUSTAIN), "worker", APP, "--group", "solo"], tmp_path / "w.log",
                {"WORDS_DB": str(db)})  # fmt: skip
    try:
        wait_until(lambda: "serving group" in proc.output() or not proc.alive(), 60, "worker")
        assert f"serving group solo (embedded {db})" in proc.output()
    finally:
        proc.stop()


def test_worker_url_env_wins_over_the_app(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    proc = Proc([str(SUSTAIN), "worker", APP, "--group", uid("env")], tmp_path / "w.log",
                {"WORDS_DB": str(db), "SUSTAIN_URL": server.url})  # fmt: skip
    try:
        wait_until(lambda: "serving group" in proc.output() or not proc.alive(), 60, "worker")
        assert f"(remote {server.url})" in proc.output()
        assert not db.exists()
    finally:
        proc.stop()


# -- 5. tree and 7. recorded step arguments -----------------------------------------------------


def test_tree_names_every_kind_and_shows_awaited_promises(server: Server, worker: Worker) -> None:
    who = uid("bob")
    root = uid("approval")
    ok(
        "invoke",
        root,
        "-f",
        "approval",
        "--arg",
        who,
        "--arg",
        worker.group,
        "--target",
        worker.group,
        server=server,
    )
    wait_until(lambda: exists(server, f"approve-{who}"), 60, "the awaited promise")
    lines = ok("tree", root, server=server).out.splitlines()
    assert root in lines[0]
    assert "approval" in lines[0]
    text = "\n".join(lines)
    assert f"{root}:1 (run add) resolved" in text
    assert f"{root}:2 (rpc greet) resolved" in text
    assert "(detached greet)" in text
    assert f"{root}:4 (sleep) resolved" in text
    assert f"approve-{who} (promise) pending" in text
    assert "rpc)" not in text.replace("(rpc greet)", "")  # the promise is not an rpc

    ok("promises", "resolve", f"approve-{who}", "--value", '{"ok": true}', server=server)
    done = ok("invoke", root, "-f", "approval", "--arg", who, "--arg", worker.group,
              "--target", worker.group, "--wait", server=server)  # fmt: skip
    assert json.loads(done.out) == {
        "who": who, "total": 3, "greeting": f"hello {who}!", "decision": {"ok": True},
    }  # fmt: skip
    graph = ok_json("tree", root, server=server)
    kinds = {c["id"]: c["kind"] for c in graph["children"]}
    assert kinds[f"approve-{who}"] == "promise"
    assert kinds[f"{root}:1"] == "run"
    assert graph["kind"] == "root"

    # 7: the step's arguments are recorded, and the UI shows them
    step = promise(server, f"{root}:1")
    assert invocation_of(step) == {"func": "add", "version": 1, "args": [1, 2], "kwargs": {}}
    page = httpx.get(f"{server.url}/ui/execution", params={"id": root}, timeout=30)
    assert page.status_code == 200
    assert "&quot;args&quot;: [\n    1,\n    2\n  ]" in page.text


def test_tree_draws_an_rpc_chain_across_executions(server: Server, worker: Worker) -> None:
    prefix = uid("fact")
    # 4! first; then 6!, which finds fact-4 already there (the factorial README's order)
    four = ok("invoke", f"{prefix}-4", "-f", "chain", "--arg", prefix, "--arg", "4",
              "--arg", worker.group, "--target", worker.group, "--wait", server=server)  # fmt: skip
    assert json.loads(four.out) == 24
    six = ok("invoke", f"{prefix}-6", "-f", "chain", "--arg", prefix, "--arg", "6",
             "--arg", worker.group, "--target", worker.group, "--wait", server=server)  # fmt: skip
    assert json.loads(six.out) == 720
    lines = ok("tree", f"{prefix}-6", server=server).out.splitlines()
    chain = [next(i for i, line in enumerate(lines) if f"{prefix}-{n} " in line)
             for n in range(6, 0, -1)]  # fmt: skip
    assert chain == sorted(chain)  # each level drawn below the one that called it
    indents = [lines[i].index(f"{prefix}-") for i in chain]
    assert indents == sorted(indents)
    assert len(set(indents)) == 6
    assert all("(rpc chain)" in lines[i] for i in chain[1:])
    assert not any(":1 " in line for line in lines)  # link records are not drawn
    graph = ok_json("tree", f"{prefix}-6", server=server)
    depth, node = 0, graph
    while node["children"]:
        (node,) = node["children"]
        depth += 1
    assert (depth, node["id"]) == (5, f"{prefix}-1")
    # the UI's execution page draws the same chain
    page = httpx.get(f"{server.url}/ui/execution", params={"id": f"{prefix}-6"}, timeout=30)
    assert page.status_code == 200
    for n in range(1, 6):
        assert f'data-id="{prefix}-{n}" data-kind="rpc"' in page.text


def test_tree_help_names_the_kinds() -> None:
    text = sustain("tree", "--help").out
    for word in ("(run f)", "(rpc f)", "(detached f)", "(sleep)", "(promise)", "--json"):
        assert word in text


def test_base64_is_not_what_users_see(server: Server) -> None:
    pid = uid()
    ok("promises", "create", pid, "-t", "1h", "--param", '{"q": 1}', server=server)
    shown = ok("promises", "get", pid, server=server).out
    assert '{"q": 1}' in shown
    assert base64.b64encode(b'{"q": 1}').decode() not in shown
