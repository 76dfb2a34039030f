"""Turning option text into protocol data: JSON values, tags, promise values, durations.

The protocol carries ``param.data`` / ``value.data`` as opaque strings that clients fill with
base64 (PROTOCOL.md §2.0); the CLI takes the user's value, JSON-stringifies it unless it is
already a string, and base64-encodes it.  Every failure is a ``CliError`` naming the option.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sustain.cli.durations import InvalidDuration, parse_duration
from sustain.cli.errors import CliError
from sustain.protocol.values import encode_data

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


def value(option: str, text: str | None, *, encode: bool = True) -> dict[str, Any]:
    """A ``{headers?, data?}`` option as protocol ``Value``; ``data`` base64-encoded."""
    if text is None:
        return {}
    raw = json_object(option, text)
    extra = set(raw) - VALUE_KEYS
    if extra:
        raise CliError(
            f"{option} takes an object with 'headers' and/or 'data', not {sorted(extra)}"
        )
    result: dict[str, Any] = {}
    if "headers" in raw and raw["headers"] is not None:
        result["headers"] = string_map(f"{option} headers", raw["headers"])
    if "data" in raw and raw["data"] is not None:
        data = raw["data"]
        if encode:
            result["data"] = encode_data(data)
        else:
            result["data"] = data if isinstance(data, str) else json.dumps(data)
    return result


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
