"""The base64 convention of ``param.data`` / ``value.data`` (PROTOCOL.md §2.0), once.

A promise's param and value carry ``data``: base64 text whose bytes the protocol does not
interpret; the SDKs put UTF-8 JSON there (SDK-WIRE.md §1.3).  The SDK's codec (sdk/codec.py),
the CLI and the UI all read and write it through these functions.

Any tenant may store any string as data, so decoding never trusts it: ``b64decode`` refuses a
non-ASCII string with a plain ``ValueError`` (not ``binascii.Error``), bytes that are not
UTF-8 raise ``UnicodeDecodeError``, JSON nested too deep raises ``RecursionError``; each
reader here answers "undecodable" for all of them (tests/faults/test_undecodable_data.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any


def to_base64(raw: bytes) -> str:
    """``raw`` as ``data``."""
    return base64.b64encode(raw).decode("ascii")


def from_base64(data: object) -> bytes | None:
    """The bytes inside ``data``, or None when it is not a base64 string."""
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:  # binascii.Error is one; a non-ASCII string raises a plain one
        return None


def encode_data(value: object) -> str:
    """base64 of ``value``'s text: a string as is, anything else JSON-stringified first."""
    text = value if isinstance(value, str) else json.dumps(value)
    return to_base64(text.encode())


def decode_data(data: object) -> str | None:
    """The text inside a base64 ``data`` field, or ``None`` if it is not base64 UTF-8."""
    raw = from_base64(data)
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def decode_json(data: str | None) -> tuple[bool, Any]:
    """``(True, value)`` for base64 JSON data (``None`` for none), ``(False, data)`` for
    anything else."""
    if not data:
        return True, None
    raw = from_base64(data)
    if raw is None:
        return False, data
    try:
        return True, json.loads(raw)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
        return False, data
