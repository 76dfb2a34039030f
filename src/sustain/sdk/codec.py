"""Values across the durability boundary, in the SDK-WIRE encoding (§1.3).

A value is ``{"data": base64(utf-8 JSON)}`` (base64 as protocol/values.py writes it); an
invocation is the JSON object ``{"func", "args", "kwargs", "version"}``; an error is
``{"__type": "error", "message", "name"}`` and decodes to ``ApplicationError`` (never
unpickled: only JSON ever comes off the wire).  Dataclasses, msgspec Structs, datetimes and
pydantic models (when pydantic is installed) encode as JSON and are rebuilt from the
annotation the reader asks for (``convert``).  A value that cannot be encoded raises
``SerializationError`` so the call that produced it fails, not the task.

Infinities use the official TypeScript SDK's markers: ``float("inf")`` travels as the string
``"__INF__"`` and ``-inf`` as ``"__NEG_INF__"``, and those strings decode back to floats, so
an infinity survives a crossing to and from TypeScript (JSON has no infinity; msgspec, and so
the official Python SDK, would write ``null``).  Both directions cost one byte search in the
common case: the value is walked only when its JSON holds ``null`` (where an infinity may
have gone) or a marker.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from sustain.errors import (
    ApplicationError,
    CanceledError,
    DecodingError,
    PromiseTimeoutError,
    SerializationError,
)
from sustain.protocol.values import from_base64, to_base64


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


def encode(obj: Any, id: str | None = None) -> dict[str, Any]:
    """A wire ``Value`` holding ``obj``."""
    return {"data": to_base64(to_json(obj, id))}


def decode(value: Mapping[str, Any] | None, id: str | None = None) -> Any:
    """The JSON held by a wire ``Value`` (``None`` when it holds nothing)."""
    data = (value or {}).get("data")
    if not data:
        return None
    if not isinstance(data, str):
        raise DecodingError("Value data is not a string", id)
    raw = from_base64(data)
    if raw is None:
        raise DecodingError("Value data is not base64", id)
    return from_json(raw, id)


def encode_error(exc: BaseException, id: str | None = None) -> dict[str, Any]:
    name = exc.name if isinstance(exc, ApplicationError) and exc.name else type(exc).__name__
    return encode({"__type": "error", "message": str(exc), "name": name}, id)


def error_of(payload: Any, id: str | None = None) -> ApplicationError:
    """The exception a rejected promise's decoded value stands for."""
    if isinstance(payload, dict) and payload.get("__type") in ("error", "aggregate_error"):
        message = payload.get("message")
        name = payload.get("name")
        return ApplicationError(
            message if isinstance(message, str) else "error",
            name if isinstance(name, str) else None,
            id,
        )
    return ApplicationError(str(payload), None, id)


def outcome(promise: Mapping[str, Any]) -> tuple[bool, Any]:
    """``(True, value)`` for a resolved promise, ``(False, exception)`` for a rejected one."""
    id = promise.get("id")
    state = promise.get("state")
    if state == "resolved":
        return True, decode(promise.get("value"), id)
    if state == "rejected_canceled":
        return False, CanceledError(id)
    if state == "rejected_timedout":
        return False, PromiseTimeoutError(id)
    return False, error_of(decode(promise.get("value"), id), id)


_PLAIN = frozenset({int, str, float, bool, list, dict})


def convert(obj: Any, annotation: Any) -> Any:
    """Rebuild ``obj`` (plain JSON) as ``annotation``: dataclasses, Structs, pydantic models."""
    if annotation is None or annotation is Any or obj is None:
        return obj
    if type(obj) is annotation and annotation in _PLAIN:
        return obj  # already what was asked for (msgspec would hand back the same value)
    validate = getattr(annotation, "model_validate", None)
    if callable(validate):
        return validate(obj)
    if isinstance(annotation, type) and (
        dataclasses.is_dataclass(annotation) or issubclass(annotation, msgspec.Struct)
    ):
        return msgspec.convert(obj, annotation)
    try:
        return msgspec.convert(obj, annotation, strict=False)
    except (msgspec.ValidationError, TypeError):
        return obj  # an annotation msgspec cannot handle: hand back the JSON unchanged


class Invocation(msgspec.Struct, frozen=True):
    """The ``param`` of a promise that runs a function (SDK-WIRE §1.3)."""

    func: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    version: int = 1


def encode_invocation(
    func: str, args: Any, kwargs: Mapping[str, Any], version: int, id: str | None = None
) -> dict[str, Any]:
    payload = {"func": func, "args": list(args), "kwargs": dict(kwargs), "version": version}
    return encode(payload, id)


def decode_invocation(param: Mapping[str, Any] | None, id: str | None = None) -> Invocation:
    payload = decode(param, id)
    try:
        return msgspec.convert(payload, Invocation, strict=False)
    except msgspec.ValidationError as exc:
        raise DecodingError(f"Promise param is not an invocation: {exc}", id) from None


_STEP_PARAMS: dict[tuple[str, int], str] = {}  # (func, version) -> a local step's param data

# A step's arguments are recorded for people (the UI, ``sustain promises get``), never read
# back: a step runs with the arguments of the code that replays it.  Past this many bytes of
# JSON only a preview is kept, so a step over a large document does not store it twice.
MAX_RECORDED_ARGS = 4096


def step_param(
    func: str,
    version: int,
    id: str | None = None,
    args: tuple[Any, ...] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``param`` of a local step, ``encode({"func", "version", "args", "kwargs"})``;
    without arguments the same few strings for every step of a function, encoded once."""
    if args or kwargs:
        named = dict(kwargs or {})
        try:  # the usual case, small JSON arguments: one encoding
            raw = to_json({"func": func, "version": version, "args": list(args), "kwargs": named})
        except SerializationError:
            raw = b""
        if raw and len(raw) <= MAX_RECORDED_ARGS:
            return {"data": to_base64(raw)}
        payload: dict[str, Any] = {"func": func, "version": version}
        payload.update(recorded_args(args, named))
        return encode(payload, id)
    key = (func, version)
    data = _STEP_PARAMS.get(key)
    if data is None:
        data = encode({"func": func, "version": version}, id)["data"]
        if len(_STEP_PARAMS) < 4096:  # function names are few; never grow without bound
            _STEP_PARAMS[key] = data
    return {"data": data}


def recorded_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``{"args", "kwargs"}`` as JSON, or a note when they are too large or not JSON.

    The note is ``{"argsNote": why, "argsPreview": the first bytes of the JSON}``: extra
    fields that every SDK ignores in a param (SDK-WIRE §1.3).
    """
    try:
        raw = to_json({"args": list(args), "kwargs": kwargs})
    except SerializationError:
        shown = ", ".join(type(a).__name__ for a in (*args, *kwargs.values()))
        return {"argsNote": f"arguments not JSON-serializable ({shown})"}
    if len(raw) <= MAX_RECORDED_ARGS:
        recorded: dict[str, Any] = from_json(raw)
        return recorded
    preview = raw[:MAX_RECORDED_ARGS].decode("utf-8", "ignore")
    return {
        "argsNote": f"arguments truncated: {len(raw)} bytes of JSON, first "
        f"{MAX_RECORDED_ARGS} kept",
        "argsPreview": preview,
    }


def call_mismatch(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[str, str] | None:
    """How two invocation params differ, as ``(recorded, given)`` renderings of the calls
    (``f(1, x=2)``), or None when func, args and kwargs agree (e.g. only the version or a
    header differs)."""
    try:
        old, new = decode(recorded), decode(given)
    except DecodingError:
        return None
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    # The TypeScript SDK sends no kwargs: absent args and kwargs are the empty ones.
    if (old.get("func"), old.get("args") or [], old.get("kwargs") or {}) == (
        new.get("func"),
        new.get("args") or [],
        new.get("kwargs") or {},
    ):
        return None
    return _call_text(old), _call_text(new)


def _call_text(payload: dict[str, Any]) -> str:
    args = payload.get("args") or []
    kwargs = payload.get("kwargs") or {}
    parts = [_short(a) for a in (args if isinstance(args, list) else [args])]
    if isinstance(kwargs, dict):
        parts += [f"{k}={_short(v)}" for k, v in kwargs.items()]
    return f"{payload.get('func', '?')}({', '.join(parts)})"


def _short(value: Any) -> str:
    text = to_json(value).decode("utf-8", "replace")
    return text if len(text) <= 60 else text[:57] + "..."


def recorded_func(param: Mapping[str, Any] | None) -> str | None:
    """The function name stored in a param, if any (for the nondeterminism check)."""
    try:
        payload = decode(param)
    except DecodingError:
        return None
    if isinstance(payload, dict):
        func = payload.get("func")
        return func if isinstance(func, str) else None
    return None
