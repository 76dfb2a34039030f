"""An ASGI app that makes a ``Sustain`` a serverless function reached by HTTP push.

``app(sustain)`` answers every ``POST`` (whatever its path: the path is part of the target
address the user chose, e.g. ``http://fn.example/run``) by running the pushed task until it
completes or suspends (``sustain.sdk.serverless``) and only then answering, so a platform that
freezes or ends the process after the answer (Cloud Run, Cloud Functions) loses nothing.
``GET``/``HEAD`` answer 200 for health checks.  With ``token=``, a push must carry
``Authorization: Bearer <token>`` (the server's ``--http-push-auth-mode bearer``).

    sustain = Sustain(url="http://127.0.0.1:8001")
    @sustain.register
    def game(ctx): ...
    app = asgi.app(sustain)          # uvicorn module:app --port 8080

The answer is JSON: ``{"outcome", "task", ...}`` with 200 when the task fulfilled, suspended
or the message was stale, 500 when the run failed and gave the task back, 400 for a body that
is not an execute message (see ``serverless.Outcome``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import msgspec

from sustain.sdk import serverless
from sustain.server.app import read_body, respond

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

MAX_BODY = 1 << 20  # an execute message is ~150 bytes; refuse anything absurd


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    await respond(send, status, msgspec.json.encode(body))


def _authorized(scope: Scope, token: str | None) -> bool:
    if token is None:
        return True
    expected = f"Bearer {token}".encode()
    for key, value in scope["headers"]:
        if key == b"authorization":
            return hmac.compare_digest(value, expected)
    return False


def app(sustain: Sustain, *, token: str | None = None) -> ASGIApp:
    """The ASGI app running ``sustain``'s registered functions on push (see module doc)."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(sustain, receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"]
        if method in ("GET", "HEAD"):
            await _respond(send, 200, {"status": "ok"})
        elif method != "POST":
            await _respond(send, 405, {"error": "Method Not Allowed: push with POST"})
        elif not _authorized(scope, token):
            await _respond(send, 401, {"error": "Unauthorized: a Bearer token is required"})
        else:
            body = await read_body(receive, MAX_BODY)
            if body is None:
                await _respond(send, 413, {"error": "Request body too large"})
                return
            outcome = await serverless.execute_async(sustain, body)
            await _respond(send, outcome.status, outcome.body())

    return asgi


async def _lifespan(sustain: Sustain, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            # uvicorn has already let in-flight pushes finish; close the connections.
            try:
                await serverless.close_async(sustain)
            except Exception:
                log.exception("closing the Sustain failed")
            await send({"type": "lifespan.shutdown.complete"})
            return
