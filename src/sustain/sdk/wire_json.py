"""JSON bytes of the SDK-WIRE encoding (§1.3): ``to_json`` and ``from_json``.

msgspec encodes dataclasses, msgspec Structs, datetimes, ``Decimal``, ``UUID``, enums,
``bytes`` (base64), sets and tuples itself; pydantic models go through ``model_dump`` (without
importing pydantic).  A value that cannot be encoded raises ``SerializationError``.

Infinities use the official TypeScript SDK's markers: ``float("inf")`` travels as the string
``"__INF__"`` and ``-inf`` as ``"__NEG_INF__"``, and those strings decode back to floats, so
an infinity survives a crossing to and from TypeScript (JSON has no infinity; msgspec, and so
the official Python SDK, would write ``null``).  Both directions cost one byte search in the
common case: the value is walked only when its JSON holds ``null`` (where an infinity may
have gone) or a marker.
"""

from __future__ import annotations

import math
from typing import Any

import msgspec

from sustain.errors import DecodingError, SerializationError


def _enc_hook(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)  # pydantic v2, without importing pydantic
    if callable(dump):
        return dump(mode="json")
    if isinstance(obj, set | frozenset):
        return list(obj)
    raise NotImplementedError(f"{type(obj).__name__} is not JSON serializable")


_encoder = msgspec.json.Encoder(enc_hook=_enc_hook)

INF, NEG_INF = "__INF__", "__NEG_INF__"  # the official TS SDK's JSON for +-Infinity
_INF_MARKERS = (b'"__INF__"', b'"__NEG_INF__"')


def _mark_infinities(obj: Any) -> Any:
    """``obj`` with every infinite float (in lists, tuples, dicts) replaced by its marker."""
    if isinstance(obj, float):
        if obj == math.inf:
            return INF
        return NEG_INF if obj == -math.inf else obj
    if isinstance(obj, list | tuple):
        return [_mark_infinities(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _mark_infinities(item) for key, item in obj.items()}
    return obj


def _unmark_infinities(obj: Any) -> Any:
    if obj == INF:
        return math.inf
    if obj == NEG_INF:
        return -math.inf
    if isinstance(obj, list):
        return [_unmark_infinities(item) for item in obj]
    if isinstance(obj, dict):
        return {key: _unmark_infinities(item) for key, item in obj.items()}
    return obj


def to_json(obj: Any, id: str | None = None) -> bytes:
    try:
        raw = _encoder.encode(obj)
        # msgspec writes an infinity as null: only then can the walk change anything.
        return _encoder.encode(_mark_infinities(obj)) if b"null" in raw else raw
    except (TypeError, NotImplementedError, OverflowError, ValueError) as exc:
        raise SerializationError(f"Cannot encode value as JSON: {exc}", id) from None


def from_json(data: bytes, id: str | None = None) -> Any:
    try:
        obj = msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested too deep
        raise DecodingError(f"Stored value is not JSON: {exc}", id) from None
    # Both markers end with INF__": one search rules them out in the common case.
    if b'INF__"' in data and any(marker in data for marker in _INF_MARKERS):
        return _unmark_infinities(obj)
    return obj
