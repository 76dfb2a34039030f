"""The base64 convention for ``param.data`` / ``value.data`` (PROTOCOL.md §2.0)."""

from __future__ import annotations

import base64
import json


def encode_data(value: object) -> str:
    """base64 of ``value``'s text: a string as is, anything else JSON-stringified first."""
    text = value if isinstance(value, str) else json.dumps(value)
    return base64.b64encode(text.encode()).decode()


def decode_data(data: object) -> str | None:
    """The text inside a base64 ``data`` field, or ``None`` if it is not base64 UTF-8.

    Any tenant may store any string as data: ``b64decode`` refuses a non-ASCII one with a
    plain ``ValueError`` (not ``binascii.Error``), and bytes that are not UTF-8 raise
    ``UnicodeDecodeError``; both are ``ValueError``s."""
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True).decode()
    except ValueError:
        return None
