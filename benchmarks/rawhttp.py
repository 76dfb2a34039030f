"""A minimal HTTP/1.1 keep-alive client for the load generator: ``POST /`` and nothing else.

Why not aiohttp here: on this 2-core machine the generator and the server share the CPUs, and
aiohttp's client costs about as much CPU per request as the server spends answering it
(measured: ~0.3 ms each), so the generator would take half of what the server could use.
This client writes pre-built request bytes on one connection and parses only what a
response to our own requests needs: the status line and ``content-length`` (the Sustain
server always sends it; a chunked or length-less answer is an error here, not a guess).
One request at a time per connection (no pipelining), like a real client.
"""

from __future__ import annotations

import asyncio
from typing import cast

_HEADER_END = b"\r\n\r\n"
_LENGTH = b"\r\ncontent-length:"


class HttpError(Exception):
    """A response this client cannot read, or a lost connection."""


class Connection(asyncio.Protocol):
    def __init__(self, host: str, port: int) -> None:
        self._prefix = (
            f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self._buffer = bytearray()
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._transport: asyncio.Transport | None = None
        self._lost: Exception | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(lambda: cls(host, port), host, port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport is not an asyncio.Transport subclass, but has its methods.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or HttpError("connection closed by the server")
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(self._lost)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        end = self._buffer.find(_HEADER_END)
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        at = head.find(_LENGTH)
        if not head.startswith(b"http/1.1 ") or at < 0:
            waiter.set_exception(HttpError(f"unreadable response head: {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + len(_LENGTH) : stop if stop >= 0 else len(head)])
        total = end + len(_HEADER_END) + length
        if len(self._buffer) < total:
            return
        body = bytes(self._buffer[end + len(_HEADER_END) : total])
        del self._buffer[:total]
        waiter.set_result((int(head[9:12]), body))

    async def post(self, body: bytes) -> tuple[int, bytes]:
        """Send one ``POST /`` and return (HTTP status, body)."""
        if self._lost is not None:
            raise self._lost
        assert self._transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(self._prefix + str(len(body)).encode() + _HEADER_END + body)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
