"""The official SDKs' tokens against a Sustain server with JWT authentication on.

Both SDKs take the token from ``RESONATE_TOKEN`` and send it as a bearer header and in each
envelope's ``head.auth``; Sustain reads ``head.auth`` for ``POST /`` and the header for the
poll stream.  The server runs in unsigned mode (``--auth-publickey none``), so the test mints
its tokens without a key; the claims are still checked (``exp``, ``role``/``prefix``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest

from tests.interop.conftest import SERVER_FLAGS
from tests.interop.harness import Launcher
from tests.servers import ServerProcess, start_server, unique

pytestmark = pytest.mark.timeout(600)


def unsigned_jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("interop-auth"), *SERVER_FLAGS, "--auth-publickey", "none"
    )
    yield proc
    proc.stop()


def test_official_sdks_authenticate_with_their_token(launch: Launcher) -> None:
    token = unsigned_jwt({"role": "admin", "exp": int(time.time()) + 3600})
    good = {"RESONATE_TOKEN": token}
    py = launch.py_cases(unique("py-auth"), [
        {"name": "two", "op": "run", "id": unique("two"), "func": "two_steps", "args": ["a", 1]},
    ], env=good)  # fmt: skip
    ts = launch.node_cases(unique("ts-auth"), [
        {"name": "two", "op": "run", "id": unique("two"), "func": "ts_two_steps", "args": [1]},
    ], env=good)  # fmt: skip
    assert py.wait_results(["two"])["two"] == {"name": "two", "ok": True, "value": [10, 20]}
    assert ts.wait_results(["two"])["two"] == {"name": "two", "ok": True, "value": [10, 20]}
    # the poll streams were accepted too (a refused stream only shows as reconnect warnings)
    assert "SSE endpoint returned" not in py.output(), py.output()
    assert "SSE connection error" not in ts.output(), ts.output()

    # no token: refused, and the SDKs say so (a Python `run` handle would wait forever on a
    # refused create, against any server: the raw client shows the answer instead)
    py = launch.py_cases(unique("py-anon"), [
        {"name": "two", "op": "get", "id": unique("two")},
    ])  # fmt: skip
    ts = launch.node_cases(unique("ts-anon"), [
        {"name": "two", "op": "run", "id": unique("two"), "func": "ts_two_steps", "args": [1]},
    ])  # fmt: skip
    refused_py = py.wait_results(["two"])["two"]
    refused_ts = ts.wait_results(["two"])["two"]
    assert refused_py["ok"] is False
    assert "401" in refused_py["error"], refused_py
    assert refused_ts["ok"] is False
    assert refused_ts["error"] == "platform failure: HTTP 401"  # docs/interop.md: HTTP status


def test_official_sdks_run_under_a_tenant_token(launch: Launcher) -> None:
    """A tenant's token (``prefix``, no role) with a group and root ids inside the prefix: the
    ids, tags, targets and listener addresses both SDKs mint all stay inside it
    (docs/security.md), so their workflows run as under an admin token."""
    token = unsigned_jwt({"prefix": "tA-", "exp": int(time.time()) + 3600})
    env = {"RESONATE_TOKEN": token}
    py = launch.py_cases(unique("tA-py"), [
        {"name": "two", "op": "run", "id": unique("tA-two"), "func": "two_steps", "args": ["a", 1]},
    ], env=env)  # fmt: skip
    ts = launch.node_cases(unique("tA-ts"), [
        {"name": "two", "op": "run", "id": unique("tA-two"), "func": "ts_two_steps", "args": [1]},
    ], env=env)  # fmt: skip
    assert py.wait_results(["two"])["two"] == {"name": "two", "ok": True, "value": [10, 20]}
    assert ts.wait_results(["two"])["two"] == {"name": "two", "ok": True, "value": [10, 20]}
    assert "SSE endpoint returned" not in py.output(), py.output()
    assert "SSE connection error" not in ts.output(), ts.output()
