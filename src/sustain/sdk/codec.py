"""Values across the durability boundary, in the SDK-WIRE encoding (§1.3).

A value is ``{"data": base64(utf-8 JSON)}`` (base64 as protocol/values.py writes it, the JSON
as wire_json.py writes it); an invocation is the JSON object ``{"func", "args", "kwargs",
"version"}``; an error is ``{"__type": "error", "message", "name", ...}`` (error_codec.py:
the same class comes back where it may, else ``ApplicationError``; never unpickled).  Values
are rebuilt from the annotation the reader asks for (typed_values.py).  A value that cannot
be encoded raises ``SerializationError`` so the call that produced it fails, not the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from sustain.errors import (
    CanceledError,
    DecodingError,
    PromiseTimeoutError,
    SerializationError,
)
from sustain.protocol.values import from_base64, to_base64
from sustain.sdk import error_codec
from sustain.sdk.typed_values import NO_PARAMETERS, Parameters, convert
from sustain.sdk.wire_json import from_json, to_json

__all__ = ["convert", "from_json", "to_json"]  # the codec's names, wherever they live


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
    """A wire ``Value`` holding the error ``exc`` (error_codec.py)."""
    return encode(error_codec.payload(exc), id)


def error_of(payload: Any, id: str | None = None) -> Exception:
    """The exception a rejected promise's decoded value stands for: the class raised when
    this process may rebuild it, else ``ApplicationError`` (error_codec.py)."""
    return error_codec.exception(payload, id)


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


class Invocation(msgspec.Struct, frozen=True):
    """The ``param`` of a promise that runs a function (SDK-WIRE §1.3)."""

    func: str
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    version: int = 1


def encode_invocation(  # noqa: PLR0917 - the call, as the wire has it
    func: str,
    args: Any,
    kwargs: Mapping[str, Any],
    version: int,
    id: str | None = None,
    params: Parameters = NO_PARAMETERS,
) -> dict[str, Any]:
    """The param of a call of ``func``; an argument that does not encode raises a
    ``SerializationError`` naming the function, the parameter (by ``params``) and the type,
    before anything is sent."""
    payload = {"func": func, "args": list(args), "kwargs": dict(kwargs), "version": version}
    try:
        return encode(payload, id)
    except SerializationError as exc:
        raise _unencodable(func, params, args, kwargs, id) or exc from None


def _unencodable(
    func: str, params: Parameters, args: Any, kwargs: Mapping[str, Any], id: str | None
) -> SerializationError | None:
    """The error naming the first argument that does not encode, if one alone does not."""
    where: list[tuple[int | str, Any]] = [*enumerate(args), *kwargs.items()]
    for at, value in where:
        try:
            to_json(value)
        except SerializationError as exc:
            name, kind = params.name(at), type(value).__qualname__
            detail = exc.reason.removeprefix("Cannot encode value as JSON: ")
            return SerializationError(
                f"{func}: argument {name} ({kind}) cannot be encoded as JSON: {detail}", id,
                function=func, parameter=name.strip("'"), type=kind,
            )  # fmt: skip
    return None


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
