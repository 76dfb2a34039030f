"""``RemoteNetwork`` against a deliberately odd HTTP server (aiohttp.web on a free port).

Our own server never misbehaves this way, so these cases need a server written for them:
answers that do not match the request, a proxy's 502 before the real answer, and SSE
framing variations (CRLF line ends, comments, multi-line data, events split across writes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sustain.sdk.network import Answer
from sustain.sdk.remote import RemoteNetwork
from tests.servers import free_port

from .conftest import Inbox, wait_until


class OddServer:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.streams = 0
        self.release = asyncio.Event()

    async def post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.posts.append(body)
        kind, corr = body["kind"], body["head"]["corrId"]
        if kind == "wrong.corr":
            corr = "someone-else"
        elif kind == "wrong.kind":
            kind = "promise.other"
        elif kind == "proxy.hiccup" and len(self.posts) == 1:
            return web.Response(status=502, text="Bad Gateway")
        elif kind == "html":
            return web.Response(status=404, text="<html>not here</html>")
        answer = {"kind": kind, "head": {"corrId": corr, "status": 200, "version": "v"}, "data": {}}
        return web.json_response(answer)

    async def poll(self, request: web.Request) -> web.StreamResponse:
        self.streams += 1
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        one = json.dumps({"kind": "execute", "head": {}, "data": {"task": {"id": "a"}}})
        await response.write(b": hello\r\n\r\n")
        await response.write(b"data: " + one.encode() + b"\r\n\r\n")
        await response.write(b'data: {"kind": "unblock",\ndata: "head": {},')  # split event
        await response.write(b'\ndata: "data": {"n": 2}}\n\n')
        await response.write(b"event: ignored\ndata: [1]\n\n")  # not an object: dropped
        await response.write(b'data: {"kind": "last"}\n\n')
        await self.release.wait()  # then close cleanly: the client reconnects
        return response


@pytest.fixture
async def odd() -> AsyncIterator[tuple[OddServer, str]]:
    server = OddServer()
    app = web.Application()
    app.router.add_post("/", server.post)
    app.router.add_get("/poll/{group}/{pid}", server.poll)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    yield server, f"http://127.0.0.1:{port}"
    server.release.set()
    await runner.cleanup()


async def test_mismatched_answers_are_refused(odd: tuple[OddServer, str]) -> None:
    server, url = odd
    net = RemoteNetwork(url, token="t0k")
    try:
        corr = await net.request("wrong.corr", {})
        assert corr.status == 500 and "Mismatched answer" in corr.data
        kind = await net.request("wrong.kind", {})
        assert kind.status == 500 and "Mismatched answer" in kind.data
        html = await net.request("html", {})
        assert html.status == 502 and "HTTP 404" in html.data
        assert server.posts[0]["head"]["auth"] == "t0k"
        assert server.posts[0]["head"]["version"] == "2026-04-01"
        assert len({p["head"]["corrId"] for p in server.posts}) == 3
    finally:
        await net.stop()


async def test_a_proxy_502_is_retried(odd: tuple[OddServer, str]) -> None:
    server, url = odd
    net = RemoteNetwork(url)
    try:
        answer = await net.request("proxy.hiccup", {"x": 1})
        assert answer == Answer(200, {})
        assert [p["kind"] for p in server.posts] == ["proxy.hiccup", "proxy.hiccup"]
        assert server.posts[0]["head"]["corrId"] == server.posts[1]["head"]["corrId"]
    finally:
        await net.stop()


async def test_sse_framing(odd: tuple[OddServer, str]) -> None:
    server, url = odd
    net = RemoteNetwork(url)
    inbox, reconnects = Inbox(), []
    net.listen("g", "p", inbox)
    net.on_reconnect(lambda: reconnects.append(1))
    await net.start()
    try:
        await inbox.wait_for(lambda m: m["kind"] == "last")
        assert inbox.messages[:2] == [
            {"kind": "execute", "head": {}, "data": {"task": {"id": "a"}}},
            {"kind": "unblock", "head": {}, "data": {"n": 2}},
        ]
        assert len(inbox.messages) == 3
        server.release.set()  # every open stream ends cleanly
        await wait_until(lambda: bool(reconnects))
        assert server.streams >= 2
    finally:
        await net.stop()
