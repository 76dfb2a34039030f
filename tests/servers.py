"""Real server processes for the tests: ``start_server`` and a small HTTP client.

``start_server(tmp, *flags)`` starts ``python -m sustain.server serve`` (or ``dev``, or any
launcher such as the ``sustain`` script) on 127.0.0.1 with the default configuration (metrics
on the API port only) and a SQLite file in ``tmp``, waits until ``/ready`` answers 200 and
returns a ``ServerProcess``; ``stop()`` sends SIGTERM, then SIGKILL.  Every test folder that
needs a server uses this one harness.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import msgspec

VERSION = "2026-04-01"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Answer(msgspec.Struct):
    status: int
    kind: str
    corr_id: str
    head_status: int
    data: Any


class ServerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, db: Path, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.db = db
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def post(self, body: bytes | str, **headers: str) -> httpx.Response:
        content = body.encode() if isinstance(body, str) else body
        return self.client.post("/", content=content, headers=headers)

    def rpc(self, kind: str, data: Any, **head: Any) -> Answer:
        corr = head.pop("corrId", unique("c"))
        envelope = {
            "kind": kind,
            "head": {"corrId": corr, "version": VERSION, **head},
            "data": data,
        }
        response = self.client.post("/", content=msgspec.json.encode(envelope))
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert body["head"]["version"] == VERSION
        return Answer(
            response.status_code,
            body["kind"],
            body["head"]["corrId"],
            body["head"]["status"],
            body["data"],
        )

    def ok(self, kind: str, data: Any, **head: Any) -> Any:
        answer = self.rpc(kind, data, **head)
        assert answer.status == 200, answer
        return answer.data

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    tmp: Path,
    *flags: str,
    command: str = "serve",
    env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
    port: int | None = None,
    db: Path | None = None,
) -> ServerProcess:
    """Start ``<launcher> <command> --bind 127.0.0.1 --port <port> ...`` and wait for /ready.

    The launcher defaults to ``python -m sustain.server``; the ``sustain`` script works too.
    ``port`` defaults to a free one and ``db`` to a new file in ``tmp`` (``serve`` only); a
    restart on the same port and file passes both.
    """
    port = port or free_port()
    db = db or tmp / f"sustain-{port}.db"
    log = tmp / f"server-{port}-{time.monotonic_ns()}.log"
    argv = [
        *(launcher or [sys.executable, "-m", "sustain.server"]),
        command,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if command == "serve":
        argv += ["--sqlite-path", str(db)]
    argv += list(flags)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")}
    full_env.update(env or {})
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=tmp)
    server = ServerProcess(proc, port, db, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}:\n{server.output()}")
        try:
            if httpx.get(f"{server.url}/ready", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server not ready:\n{server.output()}")


async def create_load(
    server: ServerProcess, acked: dict[str, Any], stop: threading.Event, clients: int
) -> None:
    """``clients`` concurrent loops of ``promise.create`` until ``stop``; every create the server
    acknowledged (HTTP 200) lands in ``acked`` by id.  For the kill -9 tests: what is in ``acked``
    must survive the crash."""

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                pid = f"crash-{n}-{i}-{unique('x')}"
                envelope = {
                    "kind": "promise.create",
                    "head": {"corrId": pid, "version": VERSION},
                    "data": {
                        "id": pid,
                        "timeoutAt": 9_000_000_000_000,
                        "param": {"headers": {"n": str(n)}, "data": "eyJ4IjogMX0="},
                        "tags": {"client": str(n), "resonate:target": "poll://any@crash"},
                    },
                }
                try:
                    response = await http.post("/", content=msgspec.json.encode(envelope))
                except httpx.HTTPError:
                    return  # the server is gone: whatever was not answered may be lost
                if response.status_code == 200:
                    acked[pid] = response.json()["data"]["promise"]

    await asyncio.gather(*(client(n) for n in range(clients)))


Load = Callable[[ServerProcess, dict[str, Any], threading.Event, int], Coroutine[Any, Any, None]]


def acked_before_kill_9(
    server: ServerProcess, clients: int, count: int, load_with: Load = create_load
) -> dict[str, Any]:
    """Load ``server`` with ``clients`` create loops (``load_with``: ``create_load``, or
    another loop that puts every acknowledged promise in ``acked`` by id until ``stop``),
    SIGKILL it once ``count`` creates were acknowledged (requests still in flight), and
    return every acknowledged promise by id."""
    acked: dict[str, Any] = {}
    stop = threading.Event()
    load = load_with(server, acked, stop, clients)
    loader = threading.Thread(target=lambda: asyncio.run(load))
    loader.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < count and loader.is_alive():
            assert time.monotonic() < deadline, f"only {len(acked)} creates acknowledged"
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait()
    finally:
        stop.set()
        loader.join(timeout=60)
    assert server.proc.returncode == -signal.SIGKILL
    snapshot = dict(acked)
    assert len(snapshot) >= count
    return snapshot
