"""A WebSocket upgrade, on any path, is refused with a 403 (the protocol has no WebSocket
endpoint), never a 500, and leaves no traceback in the server's log."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Iterator

import pytest

from tests.servers import ServerProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("ws"))
    yield proc
    proc.stop()


def upgrade(server: ServerProcess, path: str) -> str:
    """The status line the server answers a WebSocket handshake on ``path`` with."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.mark.parametrize("path", ["/", "/poll/g/w1", "/ui", "/health", "/nowhere"])
def test_a_websocket_upgrade_is_refused(server: ServerProcess, path: str) -> None:
    assert upgrade(server, path) == "HTTP/1.1 403 Forbidden"
    assert server.client.get("/health").status_code == 200
    log = server.output()
    assert "Traceback" not in log and "ERROR" not in log, log
