"""Fixtures for the network tests: both networks, real server processes, message inboxes.

``network`` is parametrized: ``local`` is a ``LocalNetwork`` on a fresh SQLite file,
``remote`` a ``RemoteNetwork`` talking to a real ``sustain serve`` process shared by the
module.  ``serve_on(tmp, port, db)`` starts a server on a chosen port and file, so a test
can kill one with SIGKILL and start its successor where the client expects it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sustain.sdk.local import LocalNetwork
from sustain.sdk.remote import RemoteNetwork
from tests.servers import ServerProcess, start_server

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
    return start_server(tmp, *flags, port=port, db=db)


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
