"""The ``POST /`` envelope (PROTOCOL.md §1.4-1.5): parse request bytes, encode answers.

Theory of operation: the body is decoded once, by a typed msgspec decoder, straight into
``Request`` (data stays a plain ``dict`` for the engine's own parser).  Only when that fails
do we decode the body a second time, untyped, to recover ``kind`` and ``head.corrId`` for the
error answer (best effort, §1.5 step 1).  The envelope checks run in exactly the order of
§1.5 steps 1-4; ``EnvelopeError`` carries what the answer needs.  Steps 5-7 (debug time,
auth, dispatch) belong to the server and the engine.

``sustain.batch`` (a Sustain-only extension, docs/decisions.md) is an ordinary envelope whose
``data.requests`` holds sub-envelopes: ``parse_batch`` checks the list and turns each element
into a ``Request`` (under the outer head) or into the ``EnvelopeError`` that element would
get if it were sent alone; ``encode_batch`` answers them all in one encoder pass.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from typing import Any

import msgspec

from sustain.protocol.records import VERSION

SUPPORTED_VERSIONS: tuple[str, ...] = (VERSION,)
DEFAULT_MAX_BODY = 16 * 1024 * 1024

MSG_KIND = "Missing or invalid 'kind' field — must be a non-empty string"
MSG_DATA = "Invalid 'data' field — must be an object"
MSG_TOO_LARGE = "Request body too large"

BATCH = "sustain.batch"
MAX_BATCH = 1000
MSG_NESTED = "Invalid batch: nested batch"


class _Head(msgspec.Struct):
    corrId: str
    version: str
    auth: str | None = None
    debug_time: int | None = msgspec.field(name="resonate:debug_time", default=None)


class _Envelope(msgspec.Struct):
    kind: str
    head: _Head
    data: Any


class Request(msgspec.Struct):
    """A request that passed the envelope checks of §1.5 steps 1-4."""

    kind: str
    corr_id: str
    version: str
    auth: str | None
    debug_time: int | None
    data: dict[str, Any]


class EnvelopeError(Exception):
    """An envelope-level failure: answer ``status`` with ``message`` under ``kind``/``corr_id``."""

    def __init__(self, status: int, message: str, kind: str = "unknown", corr_id: str = "0"):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.corr_id = corr_id


class _SubEnvelope(msgspec.Struct):
    """A batch element as the typed decode of §1.5 step 1 sees it (head is not checked)."""

    kind: str
    data: Any


class _ResponseHead(msgspec.Struct):
    corrId: str
    status: int
    version: str


class Response(msgspec.Struct):
    """A response envelope of §1.5, not yet encoded (a batch encodes many in one pass)."""

    kind: str
    head: _ResponseHead
    data: Any


class _BatchData(msgspec.Struct):
    # Response structs, or msgspec.Raw for elements encoded one by one.
    responses: list[Any]


_decoder = msgspec.json.Decoder(_Envelope)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def unsupported_version(version: str) -> str:
    # Rendered as the reference renders a Rust Vec<&str> with {:?}.
    listed = ", ".join(f'"{v}"' for v in SUPPORTED_VERSIONS)
    return f"Unsupported protocol version '{version}', supported versions: [{listed}]"


def _best_effort(body: bytes) -> tuple[str, str]:
    """``kind`` and ``head.corrId`` from a body that failed the typed decode, if present."""
    try:
        raw = _any_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return "unknown", "0"
    if not isinstance(raw, dict):
        return "unknown", "0"
    kind = raw.get("kind")
    head = raw.get("head")
    corr = head.get("corrId") if isinstance(head, dict) else None
    return (
        kind if isinstance(kind, str) else "unknown",
        corr if isinstance(corr, str) else "0",
    )


def parse_request(body: bytes) -> Request:
    """Decode and check an envelope; raise ``EnvelopeError`` on the first failing step."""
    try:
        env = _decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        # RecursionError: msgspec refuses deeply nested input this way; still a bad envelope.
        kind, corr_id = _best_effort(body)
        raise EnvelopeError(400, f"Invalid request envelope: {exc}", kind, corr_id) from None
    head = env.head
    if not env.kind:
        raise EnvelopeError(400, MSG_KIND, env.kind, head.corrId)
    if not isinstance(env.data, dict):
        raise EnvelopeError(400, MSG_DATA, env.kind, head.corrId)
    if head.version not in SUPPORTED_VERSIONS:
        raise EnvelopeError(400, unsupported_version(head.version), env.kind, head.corrId)
    return Request(env.kind, head.corrId, head.version, head.auth, head.debug_time, env.data)


def parse_batch(batch: Request, max_requests: int = MAX_BATCH) -> list[Request | EnvelopeError]:
    """The elements of a ``sustain.batch`` in order, each a ``Request`` under the outer head or
    the ``EnvelopeError`` it would get alone; raises ``EnvelopeError`` for a bad list, or for
    more than ``max_requests`` elements (``limits.max_batch_requests``)."""
    if "requests" not in batch.data:
        raise EnvelopeError(400, "Invalid batch: missing 'requests'", BATCH, batch.corr_id)
    requests = batch.data["requests"]
    if not isinstance(requests, list):
        raise EnvelopeError(400, "Invalid batch: 'requests' must be an array", BATCH, batch.corr_id)
    if not requests:
        raise EnvelopeError(400, "Invalid batch: 'requests' is empty", BATCH, batch.corr_id)
    if len(requests) > max_requests:
        raise EnvelopeError(
            400,
            f"Invalid batch: {len(requests)} requests, at most {max_requests} allowed",
            BATCH,
            batch.corr_id,
        )
    return [_sub_request(batch, index, element) for index, element in enumerate(requests)]


def _sub_request(batch: Request, index: int, element: Any) -> Request | EnvelopeError:
    corr_id = f"{batch.corr_id}.{index}"
    if isinstance(element, dict):
        # Only head.corrId is read; a head that is not an object, or a corrId that is not a
        # string, falls back to the default rather than failing an element the outer head
        # already speaks for (its version, auth and debug time are the batch's).
        head = element.get("head")
        if isinstance(head, dict):
            corr = head.get("corrId")
            if isinstance(corr, str):
                corr_id = corr
        kind = element.get("kind")
        data = element.get("data")
        if isinstance(kind, str) and kind and isinstance(data, dict):
            if kind == BATCH:
                return EnvelopeError(400, MSG_NESTED, kind, corr_id)
            return Request(kind, corr_id, batch.version, batch.auth, batch.debug_time, data)
    return _sub_error(element, corr_id)


def _sub_error(element: Any, corr_id: str) -> EnvelopeError:
    """The answer of §1.5 steps 1-3 for a bad element, worded as for a body sent alone (the
    typed conversion gives msgspec's message, ``$.kind`` paths included)."""
    raw_kind = element.get("kind") if isinstance(element, dict) else None
    kind = raw_kind if isinstance(raw_kind, str) else "unknown"
    try:
        sub = msgspec.convert(element, _SubEnvelope)
    except msgspec.ValidationError as exc:
        return EnvelopeError(400, f"Invalid request envelope: {exc}", kind, corr_id)
    if not sub.kind:
        return EnvelopeError(400, MSG_KIND, kind, corr_id)
    return EnvelopeError(400, MSG_DATA, kind, corr_id)


def response(kind: str, corr_id: str, status: int, data: Any) -> Response:
    return Response(kind, _ResponseHead(corr_id, status, VERSION), data)


def encode_response(kind: str, corr_id: str, status: int, data: Any) -> bytes:
    """The response envelope of §1.5 as compact JSON bytes."""
    return _encoder.encode(Response(kind, _ResponseHead(corr_id, status, VERSION), data))


def encode_batch(corr_id: str, responses: list[Any]) -> bytes:
    """The 200 answer to a valid batch: ``responses`` are ``Response`` structs (encoded here,
    in the one pass) or ``msgspec.Raw`` envelopes already encoded."""
    return _encoder.encode(response(BATCH, corr_id, 200, _BatchData(responses)))


def encode_error(error: EnvelopeError) -> bytes:
    return encode_response(error.kind, error.corr_id, error.status, error.message)


def too_large() -> bytes:
    """The 413 answer for a body over the configured limit (§0.1 item 13)."""
    return encode_response("unknown", "0", 413, MSG_TOO_LARGE)
