"""``RemoteNetwork`` only, against real ``sustain serve`` processes: reconnects, retries, stop."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from sustain.sdk.network import Answer, NetworkStopped
from sustain.sdk.remote import RemoteNetwork
from tests.servers import ServerProcess, free_port, unique

from .conftest import DEADLINE, HOUR, Inbox, kill, now_ms, serve_on, wait_until


def retries_logged(caplog: pytest.LogCaptureFixture) -> int:
    return sum("retrying" in record.getMessage() for record in caplog.records)


async def create_target(net: RemoteNetwork, pid: str, target: str) -> Answer:
    return await net.request(
        "promise.create",
        {"id": pid, "timeoutAt": now_ms() + HOUR, "tags": {"resonate:target": target}},
    )


async def test_stream_reconnects_after_the_server_is_killed(tmp_path: Path) -> None:
    port, db = free_port(), tmp_path / "restart.db"
    server = serve_on(tmp_path, port, db)
    net = RemoteNetwork(server.url)
    inbox, reconnects = Inbox(), []
    net.listen("workers", "w1", inbox)
    net.on_reconnect(lambda: reconnects.append(1))
    await net.start()
    successor: ServerProcess | None = None
    try:
        await wait_until(lambda: net.listening("workers", "w1"))
        before = unique("before")
        assert (await create_target(net, before, net.unicast("workers", "w1"))).status == 200
        await inbox.execute(before)
        assert reconnects == []

        kill(server)
        await wait_until(lambda: not net.listening("workers", "w1"))
        successor = serve_on(tmp_path, port, db)
        await wait_until(lambda: bool(reconnects) and net.listening("workers", "w1"))

        after = unique("after")
        answer = await create_target(net, after, net.unicast("workers", "w1"))
        assert answer.status == 200
        await inbox.execute(after)
        # The restarted server kept the first promise (same file).
        got = await net.request("promise.get", {"id": before})
        assert got.data["promise"]["id"] == before
    finally:
        await net.stop()
        if successor is not None:
            successor.stop()
        server.stop()


async def test_stream_reconnects_after_a_clean_close(tmp_path: Path) -> None:
    """A server shutting down ends its streams cleanly; the client comes back all the same."""
    port, db = free_port(), tmp_path / "clean.db"
    server = serve_on(tmp_path, port, db)
    net = RemoteNetwork(server.url)
    inbox, reconnects = Inbox(), []
    net.listen("g", "w", inbox)
    net.on_reconnect(lambda: reconnects.append(1))
    await net.start()
    successor: ServerProcess | None = None
    try:
        await wait_until(lambda: net.listening("g", "w"))
        assert await asyncio.to_thread(server.stop) == 0  # SIGTERM: graceful, streams closed
        successor = serve_on(tmp_path, port, db)
        await wait_until(lambda: bool(reconnects) and net.listening("g", "w"))
        pid = unique("clean")
        assert (await create_target(net, pid, net.anycast("g"))).status == 200
        await inbox.execute(pid)
    finally:
        await net.stop()
        if successor is not None:
            successor.stop()


async def test_request_while_down_completes_when_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="sustain.sdk.remote")
    port, db = free_port(), tmp_path / "down.db"
    server = serve_on(tmp_path, port, db)
    net = RemoteNetwork(server.url)
    await net.start()
    successor: ServerProcess | None = None
    try:
        kill(server)
        pid = unique("late")
        pending = asyncio.create_task(
            net.request("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR})
        )
        await wait_until(lambda: retries_logged(caplog) >= 1)
        assert not pending.done()
        successor = serve_on(tmp_path, port, db)
        async with asyncio.timeout(DEADLINE):
            answer = await pending
        assert answer.status == 200
        assert answer.data["promise"]["id"] == pid
        assert successor.ok("promise.get", {"id": pid})["promise"]["state"] == "pending"
    finally:
        await net.stop()
        if successor is not None:
            successor.stop()


async def test_stop_interrupts_retries(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="sustain.sdk.remote")
    net = RemoteNetwork(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    await net.start()
    pending = asyncio.create_task(net.request("promise.get", {"id": "x"}))
    await wait_until(lambda: retries_logged(caplog) >= 1)
    await net.stop()
    # The guard only turns a hang into a failure; stop() wakes the backoff sleep at once.
    async with asyncio.timeout(DEADLINE):
        with pytest.raises(NetworkStopped):
            await pending
    with pytest.raises(NetworkStopped):
        await net.request("promise.get", {"id": "x"})


async def test_errors_and_envelope(remote_server: ServerProcess) -> None:
    net = RemoteNetwork(remote_server.url + "/")  # a trailing slash is fine
    await net.start()
    try:
        missing = await net.request("promise.get", {"id": unique("missing")})
        assert missing == Answer(404, missing.data)
        assert isinstance(missing.data, str)
        bad = await net.request("task.acquire", {"id": "t", "version": -1, "pid": "p", "ttl": 1})
        assert bad == Answer(400, "Version must be a non-negative integer")
        debug = await net.request("debug.snap", {})
        assert debug.status == 403
    finally:
        await net.stop()


async def test_poll_segments_are_url_encoded(remote_server: ServerProcess) -> None:
    net = RemoteNetwork(remote_server.url)
    inbox = Inbox()
    group, pid = unique("g w"), "a/b c"
    net.listen(group, pid, inbox)
    await net.start()
    try:
        await wait_until(lambda: net.listening(group, pid))
        target = net.unicast(group, pid)
        assert target == f"poll://uni@{group.replace(' ', '%20')}/a%2Fb%20c"
        task = unique("enc")
        assert (await create_target(net, task, target)).status == 200
        await inbox.execute(task)
    finally:
        await net.stop()


def unsigned(**claims: Any) -> str:
    return jwt.encode({"exp": int(time.time()) + 600, **claims}, "", algorithm="none")


async def test_token_is_sent(tmp_path: Path) -> None:
    """With auth on, requests and the stream carry the token; without one, 401."""
    server = serve_on(tmp_path, free_port(), tmp_path / "auth.db", "--auth-publickey", "none")
    authed = RemoteNetwork(server.url, token=unsigned(role="admin"))
    anonymous = RemoteNetwork(server.url)
    inbox = Inbox()
    authed.listen("g", "w", inbox)
    await authed.start()
    try:
        await wait_until(lambda: authed.listening("g", "w"))
        pid = unique("auth")
        assert (await create_target(authed, pid, authed.anycast("g"))).status == 200
        await inbox.execute(pid)
        assert (await anonymous.request("promise.get", {"id": pid})) == Answer(401, "Unauthorized")
    finally:
        await authed.stop()
        await anonymous.stop()
        server.stop()


async def test_large_unblock_over_the_stream(remote_server: ServerProcess) -> None:
    """An unblock carries the whole promise: far beyond aiohttp's 64 KiB line buffer."""
    net = RemoteNetwork(remote_server.url)
    inbox = Inbox()
    net.listen("big", "w", inbox)
    await net.start()
    try:
        await wait_until(lambda: net.listening("big", "w"))
        pid = unique("big")
        await net.request("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR})
        await net.request(
            "promise.register_listener", {"awaited": pid, "address": net.unicast("big", "w")}
        )
        value = "QUJD" * 100_000  # 400 KB of base64
        settled = await net.request(
            "promise.settle", {"id": pid, "state": "resolved", "value": {"data": value}}
        )
        assert settled.status == 200
        message = await inbox.unblock(pid)
        assert message["data"]["promise"]["value"]["data"] == value
    finally:
        await net.stop()
