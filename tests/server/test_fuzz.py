"""Fuzz: no body, however malformed, yields a 500, a hang or a dropped connection.

Hypothesis generates envelopes around every operation kind with random JSON in every field:
wrong types, missing fields, huge strings, NUL bytes, deep nesting, numbers out of range, and
raw bytes that are not JSON at all.  Every answer must be a JSON envelope with a status the
protocol uses, and the server must still answer normally afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.servers import VERSION, ServerProcess

KINDS = [
    "promise.get", "promise.create", "promise.settle", "promise.register_callback",
    "promise.register_listener", "promise.search", "task.get", "task.create", "task.acquire",
    "task.release", "task.fulfill", "task.suspend", "task.fence", "task.heartbeat", "task.halt",
    "task.continue", "task.search", "schedule.get", "schedule.create", "schedule.delete",
    "schedule.search", "debug.snap", "debug.tick", "nope", "",
]
FIELDS = [
    "id", "timeoutAt", "param", "value", "tags", "state", "awaited", "awaiter", "address",
    "limit", "cursor", "pid", "ttl", "version", "action", "actions", "tasks", "cron",
    "promiseId", "promiseTimeout", "promiseTags", "promiseParam", "time", "data", "headers",
    "kind", "head",
]
ALLOWED = {200, 300, 400, 401, 403, 404, 409, 413, 422}


def huge_string(size: int) -> str:
    return "\u00e9x\x00" * (size // 3)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), inner,
                        max_size=5),
    )


text = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["resonate:target", "poll://any@g", "poll://uni@g/x", "http://127.0.0.1:1/x",
                     "\x00", "a.b", "* * * * *", "resolved", "pending", "p1", "p1.1"]),
    st.integers(min_value=5_000, max_value=100_000).map(huge_string),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), text,
)
json_values = st.recursive(scalars, containers, max_leaves=25)
data_objects = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
heads = st.one_of(
    st.fixed_dictionaries({"corrId": st.just("f"), "version": st.just(VERSION)}),
    st.dictionaries(st.sampled_from(["corrId", "version", "auth", "resonate:debug_time"]),
                    json_values, max_size=4),
)
envelopes = st.fixed_dictionaries(
    {"kind": st.one_of(st.sampled_from(KINDS), json_values), "head": heads,
     "data": st.one_of(data_objects, json_values)},
)


def _check(server: ServerProcess, body: bytes) -> Any:
    """Post ``body``; check the answer is a well-formed envelope with an allowed status, and
    return it decoded."""
    response = server.client.post("/", content=body)  # raises on a dropped connection or hang
    assert response.status_code in ALLOWED, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["head"]["status"] == response.status_code
    assert answer["head"]["version"] == VERSION
    if response.status_code >= 400:
        assert isinstance(answer["data"], str)
    return answer


@pytest.fixture(scope="module")
def fuzz_server(debug_server: ServerProcess) -> ServerProcess:
    debug_server.client.timeout = httpx.Timeout(10)
    return debug_server


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(envelope=envelopes)
def test_random_envelopes_never_500(fuzz_server: ServerProcess, envelope: dict[str, Any]) -> None:
    _check(fuzz_server, json.dumps(envelope).encode())


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(max_size=2000), st.text(max_size=2000).map(str.encode)))
def test_random_bytes_never_500(fuzz_server: ServerProcess, body: bytes) -> None:
    _check(fuzz_server, body)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"kind":"promise.get","head":{"corrId":"x","version":"2026-04-01"},"data":'
        + b'{"a":' * 50_000 + b"1" + b"}" * 50_000 + b"}",
        b'{"kind":"promise.create","head":{"corrId":"x","version":"2026-04-01"},"data":{"id":"'
        + b"x" * 3_000_000 + b'","timeoutAt":1}}',
        b'{"kind":"promise.create","head":{"corrId":"x","version":"2026-04-01"},'
        + b'"data":{"id":"a\\u0000b","timeoutAt":1}}',
        b'{"kind":"promise.create","head":{"corrId":"x","version":"2026-04-01"},'
        + b'"data":{"id":"n","timeoutAt":1e400}}',
        b"\xff\xfe\x00garbage",
        b"",
    ],
    ids=["deep-array", "deep-object", "huge-id", "nul-byte", "float-overflow", "binary", "empty"],
)
def test_hostile_bodies(fuzz_server: ServerProcess, body: bytes) -> None:
    _check(fuzz_server, body)
    # and the server still serves normal requests afterwards
    assert fuzz_server.ok("promise.search", {"limit": 1}) is not None
