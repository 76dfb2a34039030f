"""Turning option text into protocol data: JSON values, tags, promise values, durations.

The protocol carries ``param.data`` / ``value.data`` as opaque strings that the SDKs fill
with base64 of the value's JSON (SDK-WIRE §1.3).  Users write the value itself:
``--value '{"ok": true}'`` is read as JSON (text that is not JSON is taken as a plain
string, so ``--value approved`` works) and encoded for them; ``--value-file PATH`` reads
the same from a file (``-`` is stdin).  ``--raw`` takes the wire form instead, an object
``{"headers": {...}, "data": "<base64>"}`` sent unchanged.  Arguments (``--arg``,
``--kwarg NAME=VALUE``) follow the same reading.  Every failure is a ``CliError`` naming the
option.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sustain.cli.durations import InvalidDuration, parse_duration
from sustain.cli.errors import CliError
from sustain.protocol.values import decode_data, encode_data

VALUE_KEYS = frozenset({"headers", "data"})


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def duration(option: str, text: str) -> int:
    try:
        return parse_duration(text)
    except InvalidDuration as err:
        raise CliError(f"{option}: {err}") from err


def parse_json(option: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CliError(f"{option} is not valid JSON: {err.msg} at position {err.pos}") from err
    except RecursionError as err:
        raise CliError(f"{option} is nested too deeply") from err


def json_object(option: str, text: str) -> dict[str, Any]:
    value = parse_json(option, text)
    if not isinstance(value, dict):
        raise CliError(f"{option} must be a JSON object")
    return value


def json_array(option: str, text: str) -> list[Any]:
    value = parse_json(option, text)
    if not isinstance(value, list):
        raise CliError(f"{option} must be a JSON array")
    return value


def string_map(option: str, value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CliError(f'{option} must be a JSON object of strings, e.g. \'{{"k": "v"}}\'')
    return value


def tags(option: str, text: str | None) -> dict[str, str]:
    return {} if text is None else string_map(option, parse_json(option, text))


def user_json(text: str) -> Any:
    """A value as a user writes it: JSON when it parses, else the text as a string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


def read_file(option: str, path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as file:
            return file.read()
    except OSError as err:
        raise CliError(f"{option}: cannot read {path!r}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise CliError(f"{option}: {path!r} is not UTF-8 text") from err


def user_value(
    option: str, text: str | None, path: str | None = None, *, raw: bool = False
) -> dict[str, Any]:
    """The protocol ``Value`` for ``--value TEXT`` / ``--value-file PATH`` (see the module
    docstring); ``{}`` (no value) when neither is given."""
    if text is not None and path is not None:
        raise CliError(f"use either {option} or {option}-file, not both")
    if path is not None:
        option, text = f"{option}-file", read_file(f"{option}-file", path)
    if text is None:
        return {}
    if raw:
        return wire_value(option, text)
    return {"data": encode_data(json.dumps(user_json(text)))}


def wire_value(option: str, text: str) -> dict[str, Any]:
    """The wire form ``{"headers"?, "data"?}``, ``data`` already base64, sent unchanged."""
    found = json_object(option, text)
    extra = set(found) - VALUE_KEYS
    if extra:
        raise CliError(
            f"{option} with --raw takes an object with 'headers' and/or 'data' (base64), "
            f"not {sorted(extra)}"
        )
    result: dict[str, Any] = {}
    if found.get("headers") is not None:
        result["headers"] = string_map(f"{option} headers", found["headers"])
    if found.get("data") is not None:
        data = found["data"]
        if not isinstance(data, str) or decode_data(data) is None:
            raise CliError(
                f"{option} with --raw needs 'data' as base64 text, got {json.dumps(data)[:60]}; "
                "leave out --raw to give the value itself"
            )
        result["data"] = data
    return result


def kwarg(option: str, text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` with VALUE read as ``user_json``."""
    name, sep, rest = text.partition("=")
    if not sep or not name.isidentifier():
        raise CliError(f"{option} takes NAME=VALUE (NAME a Python identifier), got {text!r}")
    return name, user_json(rest)


def action(option: str, text: str, default_kind: str) -> dict[str, Any]:
    """A nested action ``{kind, head, data}``; ``kind`` and ``head`` filled in when absent."""
    return _action(json_object(option, text), default_kind)


def actions(option: str, text: str, default_kind: str) -> list[dict[str, Any]]:
    items = json_array(option, text)
    if not all(isinstance(item, dict) for item in items):
        raise CliError(f"{option} must be a JSON array of objects")
    return [_action(item, default_kind) for item in items]


def _action(raw: dict[str, Any], default_kind: str) -> dict[str, Any]:
    if "data" not in raw and "kind" not in raw:
        # Accept the bare action data for convenience: {"id": ..., "state": ...}.
        raw = {"data": raw}
    result = {"kind": default_kind, "head": {}}
    result.update(raw)
    return result
