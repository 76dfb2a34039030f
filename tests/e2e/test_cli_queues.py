"""``sustain queues create|get|list|delete`` against a real ``sustain dev`` process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cli_harness import FAR, Server, fails, ok, ok_json, rpc, serving, uid


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory)


def test_create_get_list_delete(server: Server) -> None:
    name = uid("q")
    out = ok("queues", "create", name, "--concurrency", "1", "--rate", "100/min", server=server)
    assert f"Queue {name}" in out.out and "100/min" in out.out
    target = {"resonate:target": "poll://any@nobody", "sustain:queue": name}
    for i, priority in enumerate(["0", "5", "0", "5"]):  # the first runs, three wait
        tags = {**target, "sustain:priority": priority}
        rpc(server, "promise.create", {"id": uid(f"j{i}"), "timeoutAt": FAR, "tags": tags})
    human = ok("queues", "get", name, server=server).out
    assert "running" in human and "1 at priority 0, 2 at priority 5" in human
    got = ok_json("queues", "get", name, server=server)["queue"]
    assert (got["running"], got["waiting"], got["waitingByPriority"]) == (1, 3, {"0": 1, "5": 2})
    listed = ok_json("queues", "list", server=server)["queues"]
    assert name in [q["name"] for q in listed]
    assert name in ok("queue", "list", server=server).out  # the singular alias
    assert "deleted" in ok("queues", "delete", name, server=server).out
    assert fails("queues", "get", name, server=server) == "Error: Queue not found"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "Error: Queue concurrency must be a positive integer (got 0)"),
        (["--per-key-concurrency", "-2"], "Error: Queue per_key_concurrency must be a positive"),
        (["--rate", "100/fortnight"], "Error: Invalid queue rate '100/fortnight'"),
    ],
)
def test_bad_limits_are_one_line(server: Server, args: list[str], message: str) -> None:
    assert fails("queues", "create", uid("q"), *args, server=server).startswith(message)
