"""Tokens from the CLI (``-T``, ``SUSTAIN_TOKEN``) against a real server with JWT auth on (§7.1)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.e2e.cli_harness import (
    SUSTAIN,
    Server,
    clean_env,
    fails,
    start,
    stop,
    sustain,
    uid,
)
from tests.servers import free_port


@pytest.fixture(scope="module")
def signed_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Server, ed25519.Ed25519PrivateKey]]:
    tmp = tmp_path_factory.mktemp("auth")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp / "key.pem").write_bytes(pem)
    server = start(tmp, "--auth-publickey", str(tmp / "key.pem"))
    yield server, key
    stop(server)


def test_token_flag_and_env(signed_server: tuple[Server, ed25519.Ed25519PrivateKey]) -> None:
    server, key = signed_server
    exp = int(time.time()) + 3600
    admin = jwt.encode({"exp": exp, "role": "admin"}, key, algorithm="EdDSA")
    scoped = jwt.encode({"exp": exp, "prefix": "acme"}, key, algorithm="EdDSA")
    forged = jwt.encode({"exp": exp, "role": "admin"}, None, algorithm="none")

    assert fails("promises", "get", "acme1", server=server) == "Error: Unauthorized"
    assert fails("-T", forged, "promises", "get", "x", server=server) == "Error: Unauthorized"

    pid = uid("acme-")  # prefixes match whole segments (docs/security.md)
    assert sustain("-T", scoped, "promises", "create", pid, "-t", "1h", server=server).code == 0
    got = sustain("--json", "promises", "get", pid, server=server, SUSTAIN_TOKEN=scoped)
    assert got.json()["promise"]["id"] == pid
    line = fails("-T", scoped, "promises", "get", uid("other"), server=server)
    assert line == "Error: Forbidden"
    assert fails("-T", scoped, "promises", "search", server=server) == "Error: Forbidden"
    found = sustain("-T", admin, "--json", "promises", "search", "--tags", "{}", server=server)
    assert pid in [p["id"] for p in found.json()["promises"]]


def test_bad_key_file_is_a_startup_error(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("not a key")
    port = free_port()
    result = subprocess.run(
        [
            str(SUSTAIN),
            "dev",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--metrics-port",
            "0",
            "--auth-publickey",
            str(tmp_path / "key.pem"),
        ],
        check=False,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Cannot use auth public key" in result.stderr
    assert "Traceback" not in result.stderr
