"""Routes and the envelope over real HTTP (PROTOCOL.md §1.2-1.5, §0.1 item 13)."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.servers import VERSION, ServerProcess

VERSION_MSG = "Unsupported protocol version 'v0', supported versions: [\"2026-04-01\"]"
LEGACY = {"error": "This endpoint is no longer supported. Please update to the latest SDK."}


def envelope(kind: object = "promise.get", data: object = None, **head: object) -> str:
    h = {"corrId": "c1", "version": VERSION, **head}
    return json.dumps({"kind": kind, "head": h, "data": {"id": "x"} if data is None else data})


def test_health_and_ready(server: ServerProcess) -> None:
    health = server.client.get("/health")
    ready = server.client.get("/ready")
    assert (health.status_code, health.content) == (200, b"")
    assert (ready.status_code, ready.content) == (200, b"")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/promises"),
        ("POST", "/promises"),
        ("GET", "/promises/abc"),
        ("PATCH", "/promises/a/b"),
        ("GET", "/tasks"),
        ("POST", "/tasks/claim"),
        ("DELETE", "/schedules/s1"),
        ("GET", "/schedules"),
    ],
)
def test_legacy_routes_are_410(server: ServerProcess, method: str, path: str) -> None:
    response = server.client.request(method, path)
    assert response.status_code == 410
    assert response.headers["content-type"] == "application/json"
    assert response.json() == LEGACY


def test_unknown_paths_404_and_wrong_methods_405(server: ServerProcess) -> None:
    assert server.client.get("/nope").status_code == 404
    assert server.client.get("/promisesX").status_code == 404
    assert server.client.get("/poll/only-group").status_code == 404
    assert server.client.get("/").status_code == 405
    assert server.client.post("/health").status_code == 405


def test_http_status_equals_head_status_and_corr_id_is_echoed(server: ServerProcess) -> None:
    answer = server.rpc("promise.get", {"id": "missing-promise"}, corrId="corr-77")
    assert (answer.status, answer.head_status) == (404, 404)
    assert answer.data == "Promise not found"
    assert (answer.kind, answer.corr_id) == ("promise.get", "corr-77")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            envelope(kind="", data=[1], version="v0"),
            "Missing or invalid 'kind' field — must be a non-empty string",
        ),
        (envelope(data=[1], version="v0"), "Invalid 'data' field — must be an object"),
        (envelope(data="text"), "Invalid 'data' field — must be an object"),
        (envelope(version="v0"), VERSION_MSG),
        (envelope(kind="promise.nope"), "Unknown operation: promise.nope"),
    ],
)
def test_envelope_errors_in_order(server: ServerProcess, body: str, message: str) -> None:
    response = server.post(body)
    assert response.status_code == 400
    out = response.json()
    assert out["data"] == message
    assert out["head"] == {"corrId": "c1", "status": 400, "version": VERSION}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"null",
        b'{"kind":"promise.get","head":{"corrId":"c1"},"data":{}}',
        b'{"kind":"promise.get","head":{"corrId":"c1","version":"2026-04-01"}}',
        b"\x00\xff",
        b"[" * 50_000,
    ],
)
def test_unparseable_envelope_is_400_with_best_effort_ids(
    server: ServerProcess, body: bytes
) -> None:
    response = server.post(body)
    assert response.status_code == 400
    out = response.json()
    assert out["data"].startswith("Invalid request envelope: ")
    if b"corrId" in body:
        assert (out["kind"], out["head"]["corrId"]) == ("promise.get", "c1")
    else:
        assert (out["kind"], out["head"]["corrId"]) == ("unknown", "0")


def test_debug_time_is_ignored_without_debug(server: ServerProcess) -> None:
    # With debug off a past debug_time must not make the new promise "already timed out".
    now_ish = 4_000_000_000_000
    created = server.ok(
        "promise.create",
        {"id": "debug-time-ignored", "timeoutAt": now_ish},
        **{"resonate:debug_time": now_ish + 1},
    )
    assert created["promise"]["state"] == "pending"


def test_debug_operations_are_403_without_debug(server: ServerProcess) -> None:
    answer = server.rpc("debug.snap", {})
    assert (answer.status, answer.data) == (403, "Debug operations are disabled")


def test_content_type_is_not_checked(server: ServerProcess) -> None:
    response = server.client.post("/", content=envelope(), headers={"content-type": "text/plain"})
    assert response.status_code == 404
    assert response.json()["data"] == "Promise not found"


def test_body_over_the_limit_is_413_json(spawn: object) -> None:
    small = spawn("--max-body-size", "1000")  # type: ignore[operator]
    data = {"id": "big", "timeoutAt": 1, "param": {"data": "x" * 2000}}
    response = small.post(envelope(kind="promise.create", data=data))
    assert response.status_code == 413
    out = response.json()
    assert out["data"] == "Request body too large"
    assert out["head"]["status"] == 413
    # A body just under the limit is served normally, on a fresh connection.
    fresh = httpx.post(small.url + "/", content=envelope(), timeout=10)
    assert fresh.status_code == 404


def test_chunked_body_over_the_limit_is_413(spawn: object) -> None:
    small = spawn("--max-body-size", "1000")  # type: ignore[operator]

    def chunks():  # no content-length: the limit is enforced while reading
        for _ in range(10):
            yield b"x" * 500

    response = httpx.post(small.url + "/", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert response.json()["data"] == "Request body too large"


def test_default_limit_accepts_a_few_megabytes(server: ServerProcess) -> None:
    payload = "A" * (3 * 1024 * 1024)
    created = server.ok(
        "promise.create",
        {"id": "three-megabytes", "timeoutAt": 4_000_000_000_000, "param": {"data": payload}},
    )
    assert len(created["promise"]["param"]["data"]) == len(payload)


def test_nul_bytes_and_unicode_survive(server: ServerProcess) -> None:
    answer = server.rpc("promise.create", {"id": "nul\u0000id", "timeoutAt": 1})
    assert (answer.status, answer.data) == (400, "Promise ID must not contain null bytes")
    created = server.ok(
        "promise.create",
        {"id": "ünï-☃", "timeoutAt": 4_000_000_000_000, "param": {"data": "\u0000é"}},
    )
    assert created["promise"]["param"]["data"] == "\u0000é"
