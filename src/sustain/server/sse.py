"""``GET /poll/{group}/{id}``: the SSE stream a worker holds open (PROTOCOL.md §1.6).

The path segments are percent-decoded from the raw path (so ``%2F`` inside an id does not
split it) and must both be non-empty.  With auth on, ``Authorization: Bearer <jwt>`` is
authenticated (failure: a plain-text 401) and, a Sustain rule where PROTOCOL.md §1.6 checks
nothing more, authorized for the *group*: the token's prefix must match it by whole segments
as it would an id (``access.allows_group``; else 403 ``Forbidden``), since a stream of a group
receives that group's execute and unblock messages, values included.  A tenant's token (a
non-empty prefix) may hold at most ``transports.http_poll.max_connections_per_prefix``
streams, counted per prefix (429); at the server's capacity the answer is a plain-text 503.

The stream writes each message as one ``data: <json>`` event and, when idle for
``transports.http_poll.keepalive_interval`` ms (15 s by default), a ``: keep-alive`` comment,
which also lets proxies and clients tell a live idle stream from a dead one.  A side task
watches ``receive()`` for the client's disconnect; server shutdown closes every connection
through the registry.  Either way the connection leaves the registry.

A Sustain worker announces the functions and versions it serves in the query string
(``?functions={"name": [1, 2]}``, protocol/versions.py); a malformed one is a plain-text 400.
An execution pinned to a version is only delivered to a stream that announced it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, unquote_to_bytes

from sustain.protocol.versions import QUERY, parse_functions
from sustain.server import access
from sustain.server.auth import bearer_token

if TYPE_CHECKING:
    from sustain.runtime.clock import Clock
    from sustain.runtime.config import HttpPollConfig
    from sustain.runtime.poll import PollConnection, PollRegistry
    from sustain.server.app import Receive, Scope, Send
    from sustain.server.auth import Authenticator

TEXT = b"text/plain; charset=utf-8"
KEEP_ALIVE = b": keep-alive\n\n"


async def _plain(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", TEXT), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _segments(scope: Scope) -> tuple[str, str] | None:
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    parts = raw.split(b"/")
    if len(parts) != 4 or not parts[2] or not parts[3]:
        return None
    try:
        return (
            unquote_to_bytes(parts[2]).decode("utf-8"),
            unquote_to_bytes(parts[3]).decode("utf-8"),
        )
    except UnicodeDecodeError:
        return None


def announced(scope: Scope) -> dict[str, frozenset[int]] | None:
    """The functions the worker serves (``?functions=<json>``, protocol/versions.py); None
    when it announced nothing (an official SDK).  ``ValueError`` for a malformed one."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    values = query.get(QUERY)
    if values is None:
        return None
    if len(values) != 1:
        raise ValueError("functions must be given once")
    return parse_functions(values[0])


async def _watch_disconnect(receive: Receive, conn: PollConnection) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            conn.close()
            return


class PollStreams(NamedTuple):
    """The ``GET /poll/...`` endpoint: what it uses of the runtime, and the authenticator."""

    registry: PollRegistry  # where a stream registers
    config: HttpPollConfig  # per-prefix limit, keep-alive interval
    clock: Clock  # token expiry
    authenticator: Authenticator | None  # None when auth is off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve_poll(self, scope, receive, send)


async def serve_poll(streams: PollStreams, scope: Scope, receive: Receive, send: Send) -> None:
    if scope["method"] != "GET":
        await _plain(send, 405, b"Method Not Allowed")
        return
    segments = _segments(scope)
    if segments is None:
        await _plain(send, 404, b"Not Found")
        return
    group, id = segments
    owner: str | None = None
    if streams.authenticator is not None:
        token = bearer_token(scope["headers"])
        claims = streams.authenticator.authenticate(token, streams.clock.now() / 1000)
        if claims is None:
            await _plain(send, 401, b"Unauthorized")
            return
        if not access.allows_group(claims, group):
            await _plain(send, 403, b"Forbidden")
            return
        # Operators' tokens (admin, prefix "") are bounded by max_connections only.
        owner = access.scope_of(claims) or None
    limit = streams.config.max_connections_per_prefix
    if owner is not None and streams.registry.owned(owner) >= limit:
        message = f"Too many poll streams for this token's prefix (limit {limit})"
        await _plain(send, 429, message.encode())
        return
    try:
        functions = announced(scope)
    except ValueError as exc:
        await _plain(send, 400, str(exc).encode())
        return
    conn = streams.registry.register(group, id, owner, functions)
    if conn is None:
        await _plain(send, 503, b"Poll registration at capacity")
        return
    watcher = asyncio.create_task(_watch_disconnect(receive, conn))
    keepalive = streams.config.keepalive_interval / 1000
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        # An empty first chunk flushes the headers so the client sees the stream open.
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        while not conn.closed:
            items = await conn.drain(keepalive)
            if items:
                body = b"".join(b"data: " + item + b"\n\n" for item in items)
            elif conn.closed:
                break
            else:
                body = KEEP_ALIVE
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client went away mid-write; nothing to answer
    finally:
        streams.registry.unregister(conn)
        watcher.cancel()
