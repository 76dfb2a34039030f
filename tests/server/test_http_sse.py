"""SSE poll delivery (PROTOCOL.md §1.6, §4.2): execute and unblock messages, selection rules."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from tests.servers import ServerProcess, unique

HOUR = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next_line(self) -> str:
        async with asyncio.timeout(30):  # a guard against hanging, not a timing assertion
            while True:
                line = await anext(self.lines)
                if line:
                    return line

    async def next_message(self) -> dict[str, Any]:
        while True:
            line = await self.next_line()
            if line.startswith("data: "):
                return json.loads(line[len("data: ") :])  # type: ignore[no-any-return]


@asynccontextmanager
async def poll(server: ServerProcess, group: str, id: str, **headers: str) -> AsyncIterator[Stream]:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(60)) as client,
        client.stream("GET", f"/poll/{group}/{id}", headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        yield Stream(response)


def create_with_target(server: ServerProcess, pid: str, target: str) -> None:
    server.ok(
        "promise.create",
        {"id": pid, "timeoutAt": now_ms() + HOUR, "tags": {"resonate:target": target}},
    )


async def test_execute_to_any_group(server: ServerProcess) -> None:
    group = unique("g")
    pid = unique("exec")
    async with poll(server, group, "w1") as stream:
        create_with_target(server, pid, f"poll://any@{group}")
        message = await stream.next_message()
    assert message == {
        "kind": "execute",
        "head": {"serverUrl": f"http://localhost:{server.port}"},
        "data": {"task": {"id": pid, "version": 0}},
    }


async def test_execute_to_any_group_prefers_the_named_id(server: ServerProcess) -> None:
    group = unique("g")
    async with poll(server, group, "w1") as first, poll(server, group, "w2") as second:
        for _ in range(3):  # a random pick would miss w2 sometimes
            pid = unique("pref")
            create_with_target(server, pid, f"poll://any@{group}/w2")
            message = await second.next_message()
            assert message["data"]["task"]["id"] == pid
        # w1 gets what is addressed to it, and nothing of the above came first.
        pid = unique("pref")
        create_with_target(server, pid, f"poll://any@{group}/w1")
        assert (await first.next_message())["data"]["task"]["id"] == pid


async def test_execute_to_uni_id(server: ServerProcess) -> None:
    group = unique("g")
    async with poll(server, group, "a") as a, poll(server, group, "b") as b:
        pid_b = unique("uni")
        create_with_target(server, pid_b, f"poll://uni@{group}/b")
        pid_a = unique("uni")
        create_with_target(server, pid_a, f"poll://uni@{group}/a")
        assert (await b.next_message())["data"]["task"]["id"] == pid_b
        assert (await a.next_message())["data"]["task"]["id"] == pid_a


async def test_percent_encoded_ids_meet(server: ServerProcess) -> None:
    group = unique("g")
    pid = unique("pct")
    async with poll(server, group, "a%20b") as stream:
        create_with_target(server, pid, f"poll://uni@{group}/a%20b")
        assert (await stream.next_message())["data"]["task"]["id"] == pid


async def test_unblock_to_listener(server: ServerProcess) -> None:
    group = unique("g")
    pid = unique("listened")
    server.ok("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR})
    async with poll(server, group, "client-1") as stream:
        server.ok(
            "promise.register_listener",
            {"awaited": pid, "address": f"poll://uni@{group}/client-1"},
        )
        settled = server.ok(
            "promise.settle", {"id": pid, "state": "resolved", "value": {"data": "eA=="}}
        )
        message = await stream.next_message()
    assert message == {"kind": "unblock", "head": {}, "data": {"promise": settled["promise"]}}


async def test_keep_alive_comments(spawn: Any) -> None:
    server = spawn(env={"SUSTAIN_TRANSPORTS__HTTP_POLL__KEEPALIVE_INTERVAL": "50"})
    async with poll(server, "g", "idle") as stream:
        assert await stream.next_line() == ": keep-alive"
        assert await stream.next_line() == ": keep-alive"


async def test_capacity_and_deregistration(spawn: Any) -> None:
    server = spawn("--http-poll-max-connections", "1")
    async with poll(server, "g", "first"), httpx.AsyncClient(base_url=server.url) as client:
        full = await client.get("/poll/g/second")
        assert full.status_code == 503
        assert full.text == "Poll registration at capacity"
    # The closed stream leaves the registry: a new one is accepted (once the server noticed).
    async with asyncio.timeout(30):
        while True:
            async with (
                httpx.AsyncClient(base_url=server.url, timeout=60) as client,
                client.stream("GET", "/poll/g/third") as response,
            ):
                if response.status_code == 200:
                    break
            await asyncio.sleep(0.05)


async def test_shutdown_ends_open_streams(spawn: Any) -> None:
    server = spawn()
    async with poll(server, "g", "w") as stream:
        server.proc.terminate()
        with_end = []
        try:
            while True:
                with_end.append(await stream.next_line())
        except (StopAsyncIteration, httpx.HTTPError):
            pass
    assert server.proc.wait(timeout=30) == 0
    assert "Application shutdown complete" in server.output()
    assert all(line == ": keep-alive" for line in with_end)


async def test_a_pinned_execute_reaches_the_stream_that_announced_its_version(
    server: ServerProcess,
) -> None:
    """``?functions=`` announces what a stream serves (protocol/versions.py); an official
    SDK's stream (no parameter) gets unpinned work only."""
    group = unique("g")
    announce = '{"job": [2]}'
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(60)) as client,
        client.stream("GET", f"/poll/{group}/v2", params={"functions": announce}) as response,
        poll(server, group, "official") as official,
    ):
        assert response.status_code == 200
        v2 = Stream(response)
        for _ in range(4):  # a random pick would reach the official stream sometimes
            pid = unique("pinned")
            server.ok(
                "promise.create",
                {"id": pid, "timeoutAt": now_ms() + HOUR,
                 "tags": {"resonate:target": f"poll://any@{group}/official",
                          "sustain:function": "job", "sustain:version": "2"}},
            )  # fmt: skip
            assert (await v2.next_message())["data"]["task"]["id"] == pid
        pid = unique("plain")
        create_with_target(server, pid, f"poll://any@{group}/official")
        assert (await official.next_message())["data"]["task"]["id"] == pid
        listed = (await client.get("/workers")).json()["workers"]
        mine = {w["pid"]: w["functions"] for w in listed if w["group"] == group}
        assert mine == {"v2": {"job": [2]}, "official": None}


async def test_a_malformed_announcement_is_a_400(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/poll/g/w", params={"functions": '{"job": "1"}'})
    assert answer.status_code == 400
    assert "functions must be JSON" in answer.text
