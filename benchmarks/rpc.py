"""Request bodies and answer checks for the protocol envelope (PROTOCOL.md §1.4-1.5).

Bodies are built from byte templates rather than encoded from dicts: the load generator must
spend its CPU on sending, not on JSON, so that the server stays the bottleneck.  Ids used by
the benchmarks are plain ASCII (``[a-z0-9.-]``), so no escaping is needed.  Answers are
decoded with msgspec into the few fields the checks need; everything else is ignored.
"""

from __future__ import annotations

import msgspec

VERSION = "2026-04-01"
FAR_FUTURE = 4_102_444_800_000  # 2100-01-01: a timeout that never fires during a benchmark


class Head(msgspec.Struct):
    status: int


class PromiseRef(msgspec.Struct):
    id: str
    state: str
    timeoutAt: int  # wire names, camelCase
    settledAt: int | None = None


class PromiseData(msgspec.Struct):
    promise: PromiseRef


class PromiseAnswer(msgspec.Struct):
    kind: str
    head: Head
    data: PromiseData


class ErrorAnswer(msgspec.Struct):
    head: Head
    data: object


class Unblock(msgspec.Struct):
    kind: str
    data: PromiseData


_promise_answer = msgspec.json.Decoder(PromiseAnswer)
_error_answer = msgspec.json.Decoder(ErrorAnswer)
unblock_decoder = msgspec.json.Decoder(Unblock)


class BadAnswer(Exception):
    """The server answered something other than the expected success."""


def _head(kind: str, corr: str) -> str:
    return f'{{"kind":"{kind}","head":{{"corrId":"{corr}","version":"{VERSION}"}},"data":'


def create_body(promise_id: str, timeout_at: int, target: str | None = None) -> bytes:
    tags = f'{{"resonate:target":"{target}"}}' if target else "{}"
    data = f'{{"id":"{promise_id}","timeoutAt":{timeout_at},"param":{{}},"tags":{tags}}}'
    return (_head("promise.create", promise_id) + data + "}").encode()


def settle_body(promise_id: str) -> bytes:
    data = f'{{"id":"{promise_id}","state":"resolved","value":{{}}}}'
    return (_head("promise.settle", promise_id) + data + "}").encode()


def listener_body(promise_id: str, address: str) -> bytes:
    data = f'{{"awaited":"{promise_id}","address":"{address}"}}'
    return (_head("promise.register_listener", promise_id) + data + "}").encode()


def check(status: int, body: bytes, promise_id: str, state: str) -> PromiseRef:
    """The promise of a 200 answer about ``promise_id`` in ``state``; else ``BadAnswer``."""
    if status != 200:
        try:
            message = _error_answer.decode(body).data
        except msgspec.DecodeError:
            message = body[:200]
        raise BadAnswer(f"HTTP {status} for {promise_id}: {message!r}")
    answer = _promise_answer.decode(body)
    promise = answer.data.promise
    if answer.head.status != 200 or promise.id != promise_id or promise.state != state:
        raise BadAnswer(f"unexpected answer for {promise_id}: {body[:300]!r}")
    return promise
