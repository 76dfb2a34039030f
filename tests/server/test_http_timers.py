"""The background loops with debug mode off (PROTOCOL.md §5): timers fire near their deadline,
tasks are redelivered, leases lapse, and ``debug.start`` pauses the loops.

Assertions are on states, never on durations: the loops must get there eventually (each wait
is bounded only to turn a bug into a failure instead of a hang).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import ServerProcess, start_server, unique

from .test_http_sse import poll

# Caps of an hour on both loops' sleeps: anything that happens in these tests happens because
# the loops woke at a deadline or on a write, not because they polled.
NO_POLLING = ("--timeouts-poll-interval", "3600000", "--messages-poll-interval", "3600000")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("timers"), *NO_POLLING)
    yield proc
    proc.stop()


def now_ms() -> int:
    return int(time.time() * 1000)


def stored_state(server: ServerProcess, tag: str) -> str:
    # promise.search has no try_timeout: it shows what the background loop wrote.
    found = server.ok("promise.search", {"tags": {"t": tag}})["promises"]
    assert len(found) == 1
    return str(found[0]["state"])


def wait_for_state(server: ServerProcess, tag: str, state: str) -> None:
    deadline = time.monotonic() + 30
    while stored_state(server, tag) != state:
        assert time.monotonic() < deadline, f"never reached {state}"
        time.sleep(0.05)


def test_promise_timer_fires_without_debug(server: ServerProcess) -> None:
    tag = unique("timer")
    server.ok(
        "promise.create",
        {
            "id": tag,
            "timeoutAt": now_ms() + 300,
            "tags": {"t": tag, "resonate:target": "poll://any@nobody-listens"},
        },
    )
    wait_for_state(server, tag, "rejected_timedout")


def test_a_sleep_timer_resolves(server: ServerProcess) -> None:
    tag = unique("sleep")
    server.ok(
        "promise.create",
        {
            "id": tag,
            "timeoutAt": now_ms() + 200,
            "tags": {"t": tag, "resonate:timer": "true", "resonate:target": "poll://any@nobody"},
        },
    )
    wait_for_state(server, tag, "resolved")


async def test_timeout_unblocks_a_listener(server: ServerProcess) -> None:
    group = unique("g")
    tag = unique("listened-timer")
    async with poll(server, group, "l") as stream:
        server.ok(
            "promise.create",
            {
                "id": tag,
                "timeoutAt": now_ms() + 200,
                "tags": {"t": tag, "resonate:target": "poll://any@nobody-listens"},
            },
        )
        server.ok("promise.register_listener", {"awaited": tag, "address": f"poll://uni@{group}/l"})
        message = await stream.next_message()
    assert message["kind"] == "unblock"
    assert message["data"]["promise"]["state"] == "rejected_timedout"


async def test_retry_and_lease_expiry_redeliver(spawn: Any) -> None:
    server = spawn("--retry-timeout", "200", *NO_POLLING)
    group = unique("g")
    pid = unique("retry")
    async with poll(server, group, "w") as stream:
        server.ok(
            "promise.create",
            {
                "id": pid,
                "timeoutAt": now_ms() + 3_600_000,
                "tags": {"resonate:target": f"poll://any@{group}"},
            },
        )
        first = await stream.next_message()
        second = await stream.next_message()  # the retry timer re-sends the execute
        assert first == second
        assert second["data"]["task"] == {"id": pid, "version": 0}
        server.ok("task.acquire", {"id": pid, "version": 0, "pid": "w", "ttl": 200})
        # No heartbeat: the lease lapses, the task is pending again and re-sent at version 1.
        while True:
            message = await stream.next_message()
            if message["data"]["task"]["version"] == 1:
                break
    task = server.ok("task.get", {"id": pid})["task"]
    assert (task["state"], task["version"]) == ("pending", 1)
    assert "pid" not in task


def test_debug_start_pauses_and_debug_stop_resumes(spawn: Any) -> None:
    server = spawn("--debug", *NO_POLLING)
    assert server.ok("debug.start", {}) == {}
    tag = unique("paused")
    server.ok(
        "promise.create",
        {
            "id": tag,
            "timeoutAt": now_ms() + 100,
            "tags": {"t": tag, "resonate:target": "poll://any@nobody-listens"},
        },
    )
    time.sleep(1.0)  # well past the deadline: a running loop would have timed it out
    assert stored_state(server, tag) == "pending"
    assert server.ok("debug.stop", {}) == {}
    wait_for_state(server, tag, "rejected_timedout")


def test_dev_runs_in_memory_with_debug(spawn: Any) -> None:
    server = spawn(command="dev")
    snap = server.ok("debug.snap", {})
    assert snap["promises"] == []
    assert not server.db.exists()
