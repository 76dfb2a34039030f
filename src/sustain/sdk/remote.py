"""``RemoteNetwork``: ``POST /`` and the SSE poll stream of a Sustain or Resonate server.

Theory of operation: one ``aiohttp.ClientSession`` per network carries every request and
every stream (SDK-WIRE.md §3).

* ``request`` sends the envelope ``{kind, head: {corrId, version[, auth]}, data}`` with
  ``Authorization: Bearer`` when a token is set, and returns ``Answer(head.status, data)``
  whatever the status: protocol errors (4xx) are answers, not exceptions.  An answer whose
  ``kind`` or ``corrId`` is not the request's is refused as a 500 answer (what the official
  SDKs do).  Transport failures (refused, reset, the per-request ``timeout``) and 503
  answers (the server's "retry" for a store hiccup or a proxy's unavailable) are retried on
  the 1 s doubling ladder capped at 30 s (after one immediate retry when a pooled
  connection turns out to be closed), until ``stop()``, which makes every waiting or
  retrying request raise ``NetworkStopped`` at once (closing the session aborts the ones on
  the wire).  A retry after a lost answer is safe: creates and settles are idempotent, and
  a versioned task operation that did apply answers 409 the second time, which workers
  already treat as "no longer mine" (PROTOCOL.md §0.1 item 6).
* Coalescing (``batcher``): the requests issued in one iteration of the event loop leave
  together, as one ``sustain.batch`` (a Sustain-only extension: each element is applied
  and answered exactly as if sent alone), and a lone request leaves as a plain one, so
  nothing changes on the wire without concurrency.  Nothing waits for a timer.  A server
  that does not know ``sustain.batch`` (a Resonate server) answers 400 "Unknown
  operation" once, and this network then sends every request alone.  Each sub-answer is
  checked like a lone answer; a sub-answer 503 is retried alone on the ladder (and may then
  join a later batch); a transport failure retries the whole batch as one request is
  retried.
* ``listen`` keeps one stream per (group, pid); the stream itself lives in ``remote_sse``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from sustain.protocol.records import VERSION
from sustain.sdk import network
from sustain.sdk.batcher import Batcher, Retry
from sustain.sdk.network import Announce, Answer, MessageHandler, NetworkStopped, PollAddresses
from sustain.sdk.remote_sse import Stream

log = logging.getLogger(__name__)

_encode = msgspec.json.Encoder().encode


class RemoteNetwork(PollAddresses):
    """The ``Network`` of remote mode (see the module docstring)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 10,
        idle_timeout: float | None = 60,
    ) -> None:
        """``url`` is the server's base URL (``http://host:8001``, a path prefix is kept).

        ``timeout`` bounds one request attempt and one stream connect (seconds).
        ``idle_timeout`` drops and reconnects a stream that has been silent that long (the
        server sends a keep-alive every 15 s, so only a dead peer stays silent); None
        disables it.
        """
        self.url = url.rstrip("/")
        self._post_url = URL(self.url + "/")
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout, sock_read=idle_timeout
        )
        self._session: aiohttp.ClientSession | None = None
        self._streams: dict[tuple[str, str], Stream] = {}
        self._reconnect: list[Callable[[], None]] = []
        self._stopped = asyncio.Event()
        self._started = False
        # corrIds: unique per process and per network without a uuid per request.
        self._corr_prefix = f"sx-{os.urandom(6).hex()}-"
        self._corr = itertools.count(1)
        head = {"version": VERSION}
        if token:
            head["auth"] = token
        self._batcher = Batcher(self._post, self._stopped, head, self._corr_id, self.url)

    # -- lifecycle -------------------------------------------------------------------------

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._stopped.is_set():
                raise NetworkStopped("the network was stopped")
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                headers=self._headers,
            )
        return self._session

    async def start(self) -> None:
        if self._started:
            return
        if self._stopped.is_set():
            raise NetworkStopped("the network was stopped")
        self._started = True
        self._client()
        for stream in self._streams.values():
            stream.start()

    async def stop(self) -> None:
        """Close every stream, make pending requests raise ``NetworkStopped``, close the
        session."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        streams = list(self._streams.values())
        for stream in streams:
            stream.cancel()
        await asyncio.gather(*(stream.wait_closed() for stream in streams))
        if self._session is not None:
            await self._session.close()
        await self._batcher.close()

    # -- requests --------------------------------------------------------------------------

    async def request(self, kind: str, data: Mapping[str, Any], durable: bool = True) -> Answer:
        del durable  # the server syncs every write before it answers
        self._client()  # NetworkStopped once stopped
        corr_id = self._corr_id()
        # Encoded once: the same bytes go alone or inside a batch, on every attempt.
        body = _encode(data if isinstance(data, dict) else dict(data))
        attempt = 0
        while True:
            try:
                return await self._batcher.send(kind, corr_id, body)
            except Retry as exc:
                log.warning(
                    "%s to %s failed, retrying (attempt %d): %r", kind, self.url, attempt + 1, exc
                )
            if await network.rest(self._stopped, network.backoff(attempt)):
                raise NetworkStopped("the network was stopped")
            attempt += 1

    def _corr_id(self) -> str:
        return f"{self._corr_prefix}{next(self._corr)}"

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        """One ``POST /``: (HTTP status, body)."""
        async with self._client().post(
            self._post_url, data=body, timeout=self._timeout
        ) as response:
            return response.status, await response.read()

    # -- messages --------------------------------------------------------------------------

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        if self._stopped.is_set():
            raise NetworkStopped("the network was stopped")
        stream = self._streams.get((group, pid))
        if stream is None:
            stream = self._streams[(group, pid)] = Stream(
                self._poll_url(group, pid),
                self._client,
                self._stream_timeout,
                self._stopped,
                self._reconnected,
                functions=functions,
            )
            if self._started:
                stream.start()
        stream.handlers.append(on_message)

    async def unlisten(self, group: str, pid: str) -> None:
        stream = self._streams.pop((group, pid), None)
        if stream is not None:
            stream.cancel()
            await stream.wait_closed()

    def reannounce(self) -> None:
        """Announce the functions again (``Stream.reannounce``): one was registered late."""
        for stream in self._streams.values():
            stream.reannounce()

    def listening(self, group: str, pid: str) -> bool:
        """True while the message stream of ``(group, pid)`` is open (it may still be down
        and reconnecting after ``listen``)."""
        stream = self._streams.get((group, pid))
        return stream is not None and stream.connected

    def _poll_url(self, group: str, pid: str) -> URL:
        segments = [network.quote_segment(group), network.quote_segment(pid)]
        return URL(f"{self.url}/poll/{segments[0]}/{segments[1]}", encoded=True)

    def _reconnected(self) -> None:
        for callback in list(self._reconnect):
            try:
                callback()
            except Exception:
                log.exception("on_reconnect callback %r failed", callback)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        self._reconnect.append(callback)
