"""Sustain's codec against the official SDKs' own codecs (SDK-WIRE §1.3), value by value.

The official Python codec (``resonate.codec.Codec``, on Python 3.12) and the TypeScript one
(``Codec`` of @resonatehq/sdk, on Node) encode a table of values and decode Sustain's
encodings of the same table; Sustain decodes theirs.  Every value must come back equal on
every side, Sustain's bytes must equal the official ones, errors must keep their message
(and the TS name), and an invocation written by TS (no ``kwargs``, a ``retry`` field) must
read as one.  No server is involved: this isolates the codec from the transport.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
from typing import Any

import pytest

from sustain import ApplicationError
from sustain.sdk import codec
from tests.interop.env import Environment
from tests.interop.harness import OFFICIAL_PY

# A first run builds the SDKs' environment (pip, npm) inside the first test's setup.
pytestmark = pytest.mark.timeout(600)

VALUES: list[Any] = [
    0,
    -1,
    2**53,
    1.5,
    "",
    'héllo ✓ 😀 "quoted" \\ back',
    True,
    False,
    [],
    {},
    [1, "a", None, {"k": [True]}],
    {"nested": {"deep": [1.25, None]}, "empty": ""},
    {"func": "remote_add", "args": [2, 3], "version": 0, "retry": {"type": "never", "data": {}}},
]


def run_codec(argv: list[str], cwd: Any, job: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        argv, input=json.dumps(job), capture_output=True, text=True, cwd=cwd, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("CODEC "))
    return json.loads(line[len("CODEC ") :])  # type: ignore[no-any-return]


def data_of(value: dict[str, Any]) -> bytes:
    return base64.b64decode(value.get("data") or "")


class Declined(Exception):
    def __init__(self, card: str) -> None:
        self.card, self.code = card, 402
        super().__init__(f"card {card} declined")


def test_values_and_errors_read_the_same_on_all_three_codecs(interop_env: Environment) -> None:
    ours = [codec.encode(value) for value in VALUES]
    our_error = codec.encode_error(ValueError("boom from Sustain"))
    try:  # raised: with a traceback, attributes and Sustain's type fields (error_codec.py)
        raise Declined("4242")
    except Declined as exc:
        our_typed_error = codec.encode_error(exc, "p-1")
    py = run_codec([str(interop_env.python), str(OFFICIAL_PY), "codec"], None, {
        "values": VALUES, "decode": ours, "error": "boom from official py",
        "decode_errors": [our_error, our_typed_error],
    })  # fmt: skip
    ts = run_codec(["node", "--require", "./polyfill.cjs", "app.mjs", "codec"],
                   interop_env.node_dir, {
        "values": [*VALUES, "+inf", "-inf"],
        "decode": [*ours, codec.encode(math.inf), codec.encode(-math.inf)],
        "error": "boom from official ts", "decode_errors": [our_error, our_typed_error],
    })  # fmt: skip

    # what the official SDKs read from Sustain's encodings
    assert py["decoded"] == VALUES
    assert ts["decoded"] == [*VALUES, "+inf", "-inf"]
    # what Sustain reads from theirs
    assert [codec.decode(value) for value in py["encoded"]] == VALUES
    assert [codec.decode(value) for value in ts["encoded"]] == [*VALUES, math.inf, -math.inf]
    # the same bytes: a Sustain worker's results are indistinguishable on the wire
    assert [data_of(v) for v in ours] == [data_of(v) for v in py["encoded"]]
    assert [data_of(v) for v in ours] == [data_of(v) for v in ts["encoded"][: len(VALUES)]]
    assert [set(v) for v in ours] == [{"data"}] * len(VALUES)  # headers omitted, as Python

    # errors, both ways
    # (the fields Sustain adds, sustain:type/args/attrs, are ignored; TS shows the stack)
    assert py["decoded_errors"] == [
        {"type": "ApplicationError", "message": "boom from Sustain"},
        {"type": "ApplicationError", "message": "card 4242 declined"},
    ]
    plain = {k: ts["decoded_errors"][0][k] for k in ("type", "name", "message")}
    assert plain == {"type": "Error", "name": "ValueError", "message": "boom from Sustain"}
    typed = ts["decoded_errors"][1]
    assert (typed["type"], typed["name"], typed["message"]) == (
        "Error", "Declined", "card 4242 declined",
    )  # fmt: skip
    assert typed["stack"].startswith("Traceback (most recent call last):")
    assert typed["stack"].endswith("Declined: card 4242 declined")
    from_py = codec.error_of(codec.decode(py["error"]))
    from_ts = codec.error_of(codec.decode(ts["error"]), "t-1")
    assert type(from_py) is ApplicationError and from_py.type is None
    assert from_py.message == "boom from official py"
    assert type(from_ts) is ApplicationError
    assert (from_ts.message, from_ts.name, from_ts.type) == ("boom from official ts", "Error",
                                                             "Error")  # fmt: skip
    assert "at " in from_ts.__notes__[0]  # the JavaScript stack, as a note


def test_official_python_errors_are_never_unpickled() -> None:
    """resonate-sdk adds a pickle of the exception; Sustain reads only ``message``."""
    payload = {"__type": "error", "message": "m", "__py_pickle": "not-even-base64!"}
    error = codec.error_of(codec.decode(codec.encode(payload)))
    assert type(error) is ApplicationError
    assert error.message == "m"


def test_invocations_from_either_sdk_read_as_invocations() -> None:
    ts_param = codec.encode({"func": "f", "args": [1, "x"], "version": 0, "retry": {}})
    py_param = codec.encode({"args": [1], "kwargs": {"k": 2}, "func": "g", "version": 1})
    assert codec.decode_invocation(ts_param) == codec.Invocation("f", [1, "x"], {}, 0)
    assert codec.decode_invocation(py_param) == codec.Invocation("g", [1], {"k": 2}, 1)
    for empty in ({}, {"headers": {}, "data": ""}, {"data": None}):
        assert codec.decode(empty) is None  # Python omits, TS sends "", both mean no value
