"""Auth on and off over HTTP (PROTOCOL.md §7.1): 401/403, admin role, prefix claims, SSE."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.servers import ServerProcess, start_server, unique

HOUR = 3_600_000


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def auth_server(
    tmp_path_factory: pytest.TempPathFactory, rsa_key: rsa.RSAPrivateKey
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("auth")
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = tmp / "public.pem"
    path.write_bytes(pem)
    server = start_server(tmp, "--auth-publickey", str(path))
    yield server
    server.stop()


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, key, algorithm="RS256")


def create(server: ServerProcess, pid: str, auth: str | None) -> Any:
    data = {"id": pid, "timeoutAt": int(time.time() * 1000) + HOUR}
    head = {} if auth is None else {"auth": auth}
    return server.rpc("promise.create", data, **head)


def test_missing_bad_and_expired_tokens_are_401(
    auth_server: ServerProcess, rsa_key: rsa.RSAPrivateKey
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for auth in (
        None,
        "",
        "not-a-jwt",
        token(other, role="admin"),  # wrong signature
        token(rsa_key, role="admin", exp=int(time.time()) - 3600),  # expired
        token(rsa_key, role=5),  # role present but not a string
    ):
        answer = create(auth_server, unique("a"), auth)
        assert (answer.status, answer.data) == (401, "Unauthorized"), auth


def test_authorization_header_is_ignored_for_post(
    auth_server: ServerProcess, rsa_key: rsa.RSAPrivateKey
) -> None:
    body = '{"kind":"promise.get","head":{"corrId":"c","version":"2026-04-01"},"data":{"id":"x"}}'
    response = auth_server.post(body, authorization=f"Bearer {token(rsa_key, role='admin')}")
    assert response.status_code == 401


def test_admin_role_may_do_everything(
    auth_server: ServerProcess, rsa_key: rsa.RSAPrivateKey
) -> None:
    admin = token(rsa_key, role="ADMIN")
    assert create(auth_server, unique("any"), admin).status == 200
    assert auth_server.rpc("promise.search", {}, auth=admin).status == 200
    # Auth passes; the engine then answers for itself.
    assert auth_server.rpc("debug.snap", {}, auth=admin).status == 403
    nope = auth_server.rpc("no.such.op", {}, auth=admin)
    assert (nope.status, nope.data) == (400, "Unknown operation: no.such.op")


def test_prefix_claims(auth_server: ServerProcess, rsa_key: rsa.RSAPrivateKey) -> None:
    team = token(rsa_key, prefix="team-a")  # unique() adds "-<hex>": a whole segment
    assert create(auth_server, unique("team-a"), team).status == 200
    denied = create(auth_server, unique("team-b"), team)
    assert (denied.status, denied.data) == (403, "Forbidden")
    search = auth_server.rpc("promise.search", {}, auth=team)
    assert (search.status, search.data) == (403, "Forbidden")
    unknown = auth_server.rpc("no.such.op", {}, auth=team)
    assert unknown.status == 403  # auth runs before dispatch
    everything = token(rsa_key, prefix="")
    assert create(auth_server, unique("team-b"), everything).status == 200
    assert auth_server.rpc("promise.search", {}, auth=everything).status == 200
    no_claim = token(rsa_key)
    assert create(auth_server, unique("team-a"), no_claim).status == 403


def test_unknown_kind_without_token_is_401(auth_server: ServerProcess) -> None:
    answer = auth_server.rpc("no.such.op", {})
    assert (answer.status, answer.data) == (401, "Unauthorized")


def test_envelope_errors_come_before_auth(auth_server: ServerProcess) -> None:
    response = auth_server.post(b"{}")
    assert response.status_code == 400


def test_poll_needs_a_bearer_token(auth_server: ServerProcess, rsa_key: rsa.RSAPrivateKey) -> None:
    denied = auth_server.client.get("/poll/g/w")
    assert (denied.status_code, denied.text) == (401, "Unauthorized")
    assert denied.headers["content-type"].startswith("text/plain")
    # The group is authorized like an id (docs/security.md; test_http_tenancy.py for more).
    denied = auth_server.client.get(
        "/poll/g/w", headers={"authorization": f"Bearer {token(rsa_key, prefix='zzz')}"}
    )
    assert (denied.status_code, denied.text) == (403, "Forbidden")
    bearer = {"authorization": f"Bearer {token(rsa_key, prefix='zzz')}"}
    with (
        httpx.Client(base_url=auth_server.url, timeout=30) as client,
        client.stream("GET", "/poll/zzz-g/w", headers=bearer) as response,
    ):
        assert response.status_code == 200


def test_unsigned_mode_accepts_alg_none(spawn: Any) -> None:
    server = spawn("--auth-publickey", "none")
    unsigned = jwt.encode({"role": "admin", "exp": int(time.time()) + 600}, None, algorithm="none")
    assert create(server, unique("u"), unsigned).status == 200
    assert create(server, unique("u"), None).status == 401


def test_auth_off_needs_no_token(server: ServerProcess) -> None:
    assert create(server, unique("open"), None).status == 200


def test_unreadable_key_is_a_one_line_start_up_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sustain.server",
            "serve",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--sqlite-path",
            str(tmp_path / "x.db"),
            "--auth-publickey",
            str(tmp_path / "missing.pem"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("Error: ")
