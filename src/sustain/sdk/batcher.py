"""``POST /`` for ``RemoteNetwork``: the requests of one event-loop iteration share one HTTP
request, a ``sustain.batch`` (docs/decisions.md, "Request coalescing in the SDK").

Theory of operation:

* ``Batcher.send`` queues the request and, unless one is already due, schedules a *flush*
  task.  The task runs on the next iteration of the loop, so every request issued in the
  same iteration (the children of a fan-out, the follow-ups of every workflow woken by one
  batch's answers, the tasks acquired from one read of the message stream) is in the queue
  when it runs.  Nothing waits for a timer: a lone request leaves one iteration later than it
  used to, as a plain request, byte for byte what it was before batching existed.
* The flush takes the whole queue: one request goes out alone, two or more as
  ``sustain.batch`` chunks of at most ``MAX_BATCH`` elements and about ``MAX_BATCH_BYTES``
  of data each, sent concurrently.  At most ``MAX_FLUSHES`` flushes are on the wire at once;
  beyond that requests stay queued until one is answered, and so coalesce further under
  load (a flush resting on the retry ladder does not count: new requests never wait behind
  a backoff).  The connector's own limit (256 connections) is then never the bottleneck.
* Each sub-answer gets exactly the checks a lone answer gets (``check``: kind and corrId
  must be the request's, else a 500 answer).  Every answer of a batch is delivered in the
  same callback, so the coroutines it wakes issue their next requests in one iteration and
  those coalesce again.
* Retries: a transport failure, or an HTTP 502/503/504, retries the same body on the
  1 s doubling ladder, as a lone request always was (creates and settles are idempotent;
  see ``remote``).  A sub-answer 503 raises ``Retry`` in its own caller only, which waits
  on its own ladder and sends the request again: it may then join a later batch.
* An element answered 413 ``Batch answer too large`` (the server's answer budget for the
  batch ran out before it ran: ``limits.max_answer_size``) is sent again alone at once.
* A batch the server does not answer as a valid 200 batch is sent again request by
  request, so each request gets the answer it would get alone.  A 400 "Unknown operation"
  (a Resonate server, or a Sustain server with ``protocol.batch = false``) also turns
  batching off for the rest of this network's life.
* ``stop``: a request waiting in the queue, on the wire or on the ladder raises
  ``NetworkStopped``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import msgspec

from sustain.protocol.limits import MSG_ANSWER_TOO_LARGE
from sustain.sdk.network import Answer, NetworkStopped, backoff, rest

log = logging.getLogger(__name__)

BATCH = "sustain.batch"
MAX_BATCH = 256  # elements per batch; a server takes up to limits.max_batch_requests (1,000)
MAX_BATCH_BYTES = 1 << 20  # data per batch; far below servers' body limits (16 MiB here)
MAX_FLUSHES = 8  # flushes on the wire at once; more requests wait and coalesce

TRANSIENT_HTTP = frozenset({502, 503, 504})
_TRANSPORT = (aiohttp.ClientError, OSError, TimeoutError)

Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]


class Retry(Exception):
    """This answer means "try again later" (a 503, a proxy's 502/504)."""


class _Head(msgspec.Struct):
    corrId: str
    status: int


class _Envelope(msgspec.Struct):
    kind: str
    head: _Head
    data: Any = None


class _Responses(msgspec.Struct):
    responses: list[_Envelope]


class _BatchEnvelope(msgspec.Struct):
    kind: str
    head: _Head
    data: _Responses | str | None = None


_encode = msgspec.json.Encoder().encode
_decode_answer = msgspec.json.Decoder(_Envelope).decode
_decode_batch = msgspec.json.Decoder(_BatchEnvelope).decode


class _Item:
    """One request: its encoded data and the future its caller waits on."""

    __slots__ = ("corr_id", "data", "future", "kind")

    def __init__(self, kind: str, corr_id: str, data: bytes, future: asyncio.Future[Answer]):
        self.kind = kind
        self.corr_id = corr_id
        self.data = data
        self.future = future


class Batcher:
    """The request queue of one ``RemoteNetwork`` (see the module docstring)."""

    def __init__(
        self,
        post: Post,
        stopped: asyncio.Event,
        head: dict[str, str],
        corr_id: Callable[[], str],
        url: str,
    ) -> None:
        """``post`` sends one body and returns (HTTP status, body); ``head`` holds the
        ``version`` (and ``auth``) of every envelope; ``corr_id`` makes a batch's corrId."""
        self._post = post
        self._stopped = stopped
        self._head = head
        self._corr_id = corr_id
        self._url = url
        self.enabled = True
        self._queue: list[_Item] = []
        self._scheduled = False
        self._active = 0  # flush tasks sending or answering (not the resting ones)
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, kind: str, corr_id: str, data: bytes) -> Answer:
        """The answer to one request (``data`` already encoded).  Raises ``Retry`` for a
        "try again" answer (the caller waits on its ladder and sends it again) and
        ``NetworkStopped`` once the network stops."""
        if self._stopped.is_set():
            raise NetworkStopped("the network was stopped")
        item = _Item(kind, corr_id, data, asyncio.get_running_loop().create_future())
        if self.enabled:
            self._queue.append(item)
            self._schedule()
        else:
            # Nothing to coalesce with: the request goes out from its caller's own task, as
            # before batching (cancelling the caller aborts it).
            await self._send([item])
        return await item.future

    async def close(self) -> None:
        """After ``stop``: fail the queued requests, wait for the flushes (they end at once:
        the session is closed and the ladder's rest returns)."""
        _stop(self._queue)
        self._queue.clear()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- flushes ---------------------------------------------------------------------------

    def _schedule(self) -> None:
        if self._scheduled or not self._queue or self._active >= MAX_FLUSHES:
            return
        self._scheduled = True
        self._active += 1  # counted from now, so the cap holds before the task runs
        task = asyncio.get_running_loop().create_task(self._flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        self._scheduled = False
        items = [item for item in self._queue if not item.future.done()]
        self._queue.clear()
        try:
            if self._stopped.is_set():
                _stop(items)
            elif not self.enabled:
                await self._singly(items)
            else:
                chunks = _chunks(items)
                if len(chunks) == 1:
                    await self._send(chunks[0])
                else:
                    await asyncio.gather(*(self._send(chunk) for chunk in chunks))
        finally:
            self._active -= 1
            self._schedule()

    async def _singly(self, items: list[_Item]) -> None:
        await asyncio.gather(*(self._send([item]) for item in items if not item.future.done()))

    async def _send(self, items: list[_Item]) -> None:
        """Send ``items`` (alone or as one batch) and settle each one's future."""
        try:
            if len(items) == 1:
                item = items[0]
                status, raw = await self._exchange(self._body(item), item.kind, retry_http=False)
                _deliver(item, status, raw)
            elif items:
                await self._send_batch(items)
        except NetworkStopped:
            _stop(items)
        except asyncio.CancelledError:
            for item in items:
                item.future.cancel()
            raise
        except Exception as exc:  # a bug: its callers see it rather than hang
            _fail(items, exc)

    async def _send_batch(self, items: list[_Item]) -> None:
        outer = self._corr_id()
        head = {**self._head, "corrId": outer}
        requests = [
            {"kind": item.kind, "head": {"corrId": item.corr_id}, "data": msgspec.Raw(item.data)}
            for item in items
        ]
        body = _encode({"kind": BATCH, "head": head, "data": {"requests": requests}})
        _, raw = await self._exchange(body, f"{BATCH} of {len(items)}", retry_http=True)
        try:
            envelope = _decode_batch(raw)
        except msgspec.DecodeError:
            envelope = None
        if envelope is None or not _is_batch(envelope, outer, len(items)):
            if envelope is not None and _unknown_operation(envelope) and self.enabled:
                self.enabled = False
                log.info("%s does not know %s: requests go one by one", self._url, BATCH)
            # Whatever refused the batch as a whole, each request alone gets its own answer.
            await self._singly(items)
            return
        assert isinstance(envelope.data, _Responses)
        again: list[_Item] = []
        for item, sub in zip(items, envelope.data.responses, strict=True):
            if item.future.done():
                continue  # its caller was cancelled
            if sub.head.status == 413 and sub.data == MSG_ANSWER_TOO_LARGE:
                again.append(item)
                continue
            try:
                item.future.set_result(check(item.kind, item.corr_id, sub))
            except Retry as exc:
                item.future.set_exception(exc)
        if again:
            # The batch's answer budget ran out before these ran (they changed nothing);
            # alone, each has a whole budget (a search pages within it).
            await self._singly(again)

    def _body(self, item: _Item) -> bytes:
        head = {"corrId": item.corr_id, **self._head}
        return _encode({"kind": item.kind, "head": head, "data": msgspec.Raw(item.data)})

    async def _exchange(self, body: bytes, what: str, *, retry_http: bool) -> tuple[int, bytes]:
        """POST ``body`` until an answer arrives: transport failures (and, with
        ``retry_http``, HTTP 502/503/504) are retried on the ladder until ``stop()``."""
        attempt = 0
        fresh = False  # the one immediate retry after a dropped keep-alive connection
        while True:
            try:
                status, raw = await self._post(body)
                if not (retry_http and status in TRANSIENT_HTTP):
                    return status, raw
                failure: BaseException = Retry(f"HTTP {status}")
            except _TRANSPORT as exc:
                if self._stopped.is_set():
                    raise NetworkStopped("the network was stopped") from None
                if isinstance(exc, aiohttp.ServerDisconnectedError) and not fresh:
                    # Most often a pooled keep-alive connection the server closed as we
                    # reused it (an idle timeout, a restart): retry at once on a new one.
                    fresh = True
                    continue
                failure = exc
            except RuntimeError:
                # aiohttp: "Session is closed" once stop() closed it under us.
                if self._stopped.is_set():
                    raise NetworkStopped("the network was stopped") from None
                raise
            log.warning(
                "%s to %s failed, retrying (attempt %d): %r", what, self._url, attempt + 1, failure
            )
            # Resting is not sending: the queue may flush meanwhile (the server may be back
            # for new requests before this one's next attempt).
            self._active -= 1
            self._schedule()
            try:
                stopped = await rest(self._stopped, backoff(attempt))
            finally:
                self._active += 1
            if stopped:
                raise NetworkStopped("the network was stopped")
            attempt += 1


def check(kind: str, corr_id: str, envelope: _Envelope) -> Answer:
    """The answer in a decoded envelope; raises ``Retry`` for a 503."""
    if envelope.head.status == 503:
        raise Retry(f"503 {envelope.data!r}")
    if envelope.kind == "unknown" and envelope.head.status >= 400:
        # The server could not read the envelope (e.g. 413 too large): its error stands.
        return Answer(envelope.head.status, envelope.data)
    if envelope.kind != kind or envelope.head.corrId != corr_id:
        return Answer(
            500,
            f"Mismatched answer: expected {kind}/{corr_id}, "
            f"got {envelope.kind}/{envelope.head.corrId}",
        )
    return Answer(envelope.head.status, envelope.data)


def answer(kind: str, corr_id: str, http_status: int, raw: bytes) -> Answer:
    """The answer of a lone request in ``raw``; raises ``Retry`` for "try again" answers."""
    try:
        envelope = _decode_answer(raw)
    except msgspec.DecodeError:
        if http_status in TRANSIENT_HTTP:
            raise Retry(f"HTTP {http_status}") from None
        text = raw[:200].decode("utf-8", "replace")
        return Answer(502, f"Invalid answer from the server (HTTP {http_status}): {text}")
    return check(kind, corr_id, envelope)


def _deliver(item: _Item, status: int, raw: bytes) -> None:
    if item.future.done():
        return  # its caller was cancelled
    try:
        item.future.set_result(answer(item.kind, item.corr_id, status, raw))
    except Retry as exc:
        item.future.set_exception(exc)


def _stop(items: list[_Item]) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(NetworkStopped("the network was stopped"))


def _fail(items: list[_Item], exc: BaseException) -> None:
    for item in items:
        if not item.future.done():
            item.future.set_exception(exc)


def _is_batch(envelope: _BatchEnvelope, corr_id: str, count: int) -> bool:
    """A valid answer to the batch ``corr_id`` of ``count`` requests."""
    data = envelope.data
    return (
        envelope.kind == BATCH
        and envelope.head.corrId == corr_id
        and envelope.head.status == 200
        and isinstance(data, _Responses)
        and len(data.responses) == count
    )


def _unknown_operation(envelope: _BatchEnvelope) -> bool:
    data = envelope.data
    return (
        envelope.head.status == 400
        and isinstance(data, str)
        and data.startswith("Unknown operation")
    )


def _chunks(items: list[_Item]) -> list[list[_Item]]:
    """``items`` cut into batches of at most ``MAX_BATCH`` requests and, unless a single
    request is larger, ``MAX_BATCH_BYTES`` of data."""
    chunks: list[list[_Item]] = []
    chunk: list[_Item] = []
    size = 0
    for item in items:
        if chunk and (len(chunk) == MAX_BATCH or size + len(item.data) > MAX_BATCH_BYTES):
            chunks.append(chunk)
            chunk, size = [], 0
        chunk.append(item)
        size += len(item.data)
    if chunk:
        chunks.append(chunk)
    return chunks
