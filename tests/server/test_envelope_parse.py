"""The envelope parser in isolation (PROTOCOL.md §1.4-1.5): checks in order, best-effort ids."""

from __future__ import annotations

import json

import msgspec
import pytest

from sustain.protocol.envelope import (
    MSG_DATA,
    MSG_KIND,
    EnvelopeError,
    encode_response,
    parse_request,
    too_large,
)

V = "2026-04-01"
VERSION_MSG = "Unsupported protocol version 'v0', supported versions: [\"2026-04-01\"]"


def env(kind: object = "promise.get", data: object = None, **head: object) -> bytes:
    h = {"corrId": "c1", "version": V, **head}
    return json.dumps({"kind": kind, "head": h, "data": {} if data is None else data}).encode()


def error(body: bytes) -> EnvelopeError:
    with pytest.raises(EnvelopeError) as info:
        parse_request(body)
    return info.value


def test_valid_envelope_keeps_fields_and_ignores_extras() -> None:
    body = json.dumps(
        {
            "kind": "promise.get",
            "extra": 1,
            "head": {"corrId": "c9", "version": V, "auth": "t", "resonate:debug_time": 5, "x": 1},
            "data": {"id": "a", "other": [1]},
        }
    ).encode()
    request = parse_request(body)
    assert (request.kind, request.corr_id, request.auth, request.debug_time) == (
        "promise.get",
        "c9",
        "t",
        5,
    )
    assert request.data == {"id": "a", "other": [1]}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"",
        b"[]",
        b'{"head":{"corrId":"c","version":"2026-04-01"},"data":{}}',
        b'{"kind":"k","data":{}}',
        b'{"kind":"k","head":{"version":"2026-04-01"},"data":{}}',
        b'{"kind":"k","head":{"corrId":"c"},"data":{}}',
        b'{"kind":"k","head":{"corrId":"c","version":"2026-04-01"}}',
        b'{"kind":1,"head":{"corrId":"c","version":"2026-04-01"},"data":{}}',
        b'{"kind":"k","head":{"corrId":"c","version":"2026-04-01","resonate:debug_time":1.0},"data":{}}',
        b'{"kind":"k","head":{"corrId":"c","version":"2026-04-01","auth":5},"data":{}}',
        b"\xff\xfe\x00",
        b"[" * 100_000,
    ],
)
def test_unparseable_envelopes_are_400_invalid_request_envelope(body: bytes) -> None:
    err = error(body)
    assert err.status == 400
    assert err.message.startswith("Invalid request envelope: ")


def test_best_effort_kind_and_corr_id() -> None:
    err = error(b'{"kind":"promise.get","head":{"corrId":"abc"},"data":{}}')
    assert (err.kind, err.corr_id) == ("promise.get", "abc")
    err = error(b'{"kind":5,"head":{"corrId":7,"version":"2026-04-01"},"data":{}}')
    assert (err.kind, err.corr_id) == ("unknown", "0")
    err = error(b"garbage")
    assert (err.kind, err.corr_id) == ("unknown", "0")


def test_checks_run_in_the_documented_order() -> None:
    # Every later check fails too; only the first one is reported.
    assert error(env(kind="", data=[1], version="v0")).message == MSG_KIND
    assert error(env(data=[1], version="v0")).message == MSG_DATA
    assert error(env(data="x")).message == MSG_DATA
    assert error(env(version="v0")).message == VERSION_MSG


def test_null_data_is_not_an_object() -> None:
    body = b'{"kind":"k","head":{"corrId":"c","version":"2026-04-01"},"data":null}'
    err = error(body)
    assert (err.message, err.kind, err.corr_id) == (MSG_DATA, "k", "c")


def test_response_envelope_shape() -> None:
    out = msgspec.json.decode(encode_response("promise.get", "c1", 404, "Promise not found"))
    assert out == {
        "kind": "promise.get",
        "head": {"corrId": "c1", "status": 404, "version": V},
        "data": "Promise not found",
    }
    big = msgspec.json.decode(too_large())
    assert big["head"]["status"] == 413
    assert big["data"] == "Request body too large"
