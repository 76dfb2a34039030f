"""One SSE poll stream (``GET /poll/{group}/{pid}``) kept open for as long as the network runs.

Theory of operation: a task connects, reads ``data:`` events until the stream ends, and
connects again, forever, until the network stops (SDK-WIRE.md §3.3-3.4).  It reconnects
after errors (refused, reset, a non-200 answer, an idle timeout) AND after a clean close (a
server shutting down closes its streams cleanly), waiting 1 s, 2 s, 4 s ... capped at 30 s
between attempts; a successful connect resets the ladder.

Every successful connect that is not the very first attempt calls ``on_reconnect``: while
the stream was down, messages for this process were dropped by the server (executes come
back through the task retry timer, unblocks do not), so the SDK re-registers its listeners
and re-checks what it waits for.  The server registers the connection before it answers, so
a message sent after the callback runs reaches the new stream.

Parsing follows the SSE format: lines end with ``\\n`` (a trailing ``\\r`` is dropped),
``data:`` lines accumulate until a blank line ends the event, comment lines (``: keep-alive``)
and other fields are ignored, and a partial event at the end of a stream is discarded.  Each
event's data is one JSON message, decoded once and handed to the handlers through
``call_soon``.  We split lines ourselves instead of using aiohttp's ``readline``, which fails
on lines longer than its 64 KiB buffer (an unblock carries a whole promise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from sustain.protocol.versions import QUERY, encode_functions
from sustain.sdk.network import (
    Announce,
    MessageHandler,
    NetworkStopped,
    backoff,
    dispatch,
    rest,
)

log = logging.getLogger(__name__)

_ACCEPT = {"Accept": "text/event-stream"}
_MAX_EVENT = 64 * 1024 * 1024  # a stream that sends more than this without a newline is broken
_decode = msgspec.json.Decoder().decode


class Stream:
    """The reconnecting reader of one ``(group, pid)`` stream; ``handlers`` get its messages."""

    def __init__(
        self,
        url: URL,
        client: Callable[[], aiohttp.ClientSession],
        timeout: aiohttp.ClientTimeout,
        stopped: asyncio.Event,
        on_reconnect: Callable[[], None],
        *,
        functions: Announce | None = None,
    ) -> None:
        self.url = url
        self._functions = functions
        self.handlers: list[MessageHandler] = []
        self._client = client
        self._timeout = timeout
        self._stopped = stopped
        self._on_reconnect = on_reconnect
        self._task: asyncio.Task[None] | None = None
        self._response: aiohttp.ClientResponse | None = None
        self._reannounce = False
        # Bumped by each reannounce(): a connect whose announcement is older reconnects.
        self._generation = 0
        self.connected = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"sustain-sse {self.url}")

    def reannounce(self) -> None:
        """Reconnect now, announcing the functions as they are now (one was registered
        after the stream opened): the open response is closed and the loop connects again
        at once, as a reconnect (listeners are refreshed).  A connect in flight, whose
        announcement was read before the registration, reconnects as soon as it is answered."""
        self._generation += 1
        if self._response is not None:
            self._reannounce = True
            self._response.close()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        failures = 0  # since the last successful connect: the backoff ladder's position
        attempts = 0
        while not self._stopped.is_set():
            attempts += 1
            try:
                await self._connect(reconnect=attempts > 1)
                failures = 0  # the stream was up, then ended cleanly
            except NetworkStopped:
                return
            except _Refused as exc:
                log.warning("poll stream %s refused: %s", self.url, exc)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                if not self._reannounce:
                    log.warning("poll stream %s failed: %r", self.url, exc)
            self.connected = False
            if self._reannounce:
                self._reannounce = False
                continue
            if await rest(self._stopped, backoff(failures)):
                return
            failures += 1

    async def _connect(self, *, reconnect: bool) -> None:
        session = self._client()
        # What this process serves, announced again at each connect (protocol/versions.py).
        generation = self._generation
        query = {} if self._functions is None else {QUERY: encode_functions(self._functions())}
        get = session.get(self.url, params=query, headers=_ACCEPT, timeout=self._timeout)
        async with get as response:
            self._response = response
            if generation != self._generation:  # registered while this connect was in flight
                self._reannounce = True
                return
            if response.status != 200:
                body = (await response.read())[:200].decode("utf-8", "replace")
                raise _Refused(f"HTTP {response.status} {body}")
            self.connected = True
            if reconnect:
                log.info("poll stream %s reconnected", self.url)
                self._on_reconnect()
            await self._read(response)
        log.info("poll stream %s closed by the server", self.url)

    async def _read(self, response: aiohttp.ClientResponse) -> None:
        loop = asyncio.get_running_loop()
        buffer = bytearray()
        data: list[bytes] = []
        async for chunk in response.content.iter_any():
            buffer += chunk
            if b"\n" not in chunk:
                if len(buffer) > _MAX_EVENT:
                    raise ValueError("SSE line too long")
                continue
            *lines, tail = bytes(buffer).split(b"\n")
            buffer = bytearray(tail)
            for raw_line in lines:
                line = raw_line[:-1] if raw_line.endswith(b"\r") else raw_line
                if not line:
                    if data:
                        self._emit(loop, b"\n".join(data))
                        data = []
                    continue
                if line[0] == 0x3A:  # ":" a comment (keep-alive)
                    continue
                field, _, value = line.partition(b":")
                if field == b"data":
                    data.append(value[1:] if value[:1] == b" " else value)

    def _emit(self, loop: asyncio.AbstractEventLoop, raw: bytes) -> None:
        try:
            message: Any = _decode(raw)
        except msgspec.DecodeError:
            log.warning("poll stream %s: undecodable event dropped: %r", self.url, raw[:200])
            return
        if not isinstance(message, dict):
            log.warning("poll stream %s: non-object event dropped: %r", self.url, raw[:200])
            return
        loop.call_soon(dispatch, self.handlers, message)


class _Refused(Exception):
    """The server answered the stream request with something other than 200."""
