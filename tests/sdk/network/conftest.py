"""Fixtures for the network tests: both networks, real server processes, message inboxes.

``network`` is parametrized: ``local`` is a ``LocalNetwork`` on a fresh SQLite file,
``remote`` a ``RemoteNetwork`` talking to a real ``sustain serve`` process shared by the
module.  ``serve_on(tmp, port, db)`` starts a server on a chosen port and file, so a test
can kill one with SIGKILL and start its successor where the client expects it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sustain.sdk.local import LocalNetwork
from sustain.sdk.remote import RemoteNetwork
from tests.server.conftest import ServerProcess, start_server

HOUR = 3_600_000
DEADLINE = 60.0  # a guard against hangs, never a timing assertion

Network = LocalNetwork | RemoteNetwork


def now_ms() -> int:
    return int(time.time() * 1000)


class Inbox:
    """A message handler that keeps what it receives; ``wait_for`` one matching message."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def wait_for(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        async with asyncio.timeout(DEADLINE):
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                self._arrived.clear()
                await self._arrived.wait()

    async def execute(self, task_id: str) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: m["kind"] == "execute" and m["data"]["task"]["id"] == task_id
        )

    async def unblock(self, promise_id: str) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: m["kind"] == "unblock" and m["data"]["promise"]["id"] == promise_id
        )


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(DEADLINE):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


def serve_on(tmp: Path, port: int, db: Path, *flags: str) -> ServerProcess:
    """``sustain serve`` on ``port`` with SQLite at ``db``; waits for ``/ready``."""
    log = tmp / f"server-{port}-{time.monotonic_ns()}.log"
    argv = [
        sys.executable,
        "-m",
        "sustain.server",
        "serve",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        "0",
        "--sqlite-path",
        str(db),
        *flags,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp)
    server = ServerProcess(proc, port, db, log)
    deadline = time.monotonic() + DEADLINE
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


def kill(server: ServerProcess) -> None:
    """SIGKILL, no goodbye: open streams and requests see a dead peer."""
    server.client.close()
    server.proc.kill()
    server.proc.wait()


@pytest.fixture(scope="module")
def remote_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("net"))
    yield proc
    proc.stop()


@pytest.fixture(params=["local", "remote"])
async def network(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Network]:
    net: Network
    if request.param == "local":
        net = LocalNetwork(str(tmp_path / "local.db"))
    else:
        server: ServerProcess = request.getfixturevalue("remote_server")
        net = RemoteNetwork(server.url)
    await net.start()
    yield net
    await net.stop()
