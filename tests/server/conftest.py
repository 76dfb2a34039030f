"""Fixtures with a real server process (the harness is ``tests/servers.py``).

``spawn(*flags, env=...)`` starts a server for one test and stops it afterwards; ``server``
and ``debug_server`` are shared by a module, so tests use unique ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ServerProcess, start_server


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def _spawn(
        *flags: str,
        command: str = "serve",
        env: dict[str, str] | None = None,
        launcher: list[str] | None = None,
    ) -> ServerProcess:
        server = start_server(tmp_path, *flags, command=command, env=env, launcher=launcher)
        started.append(server)
        return server

    yield _spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("server"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("debug"), "--debug")
    yield proc
    proc.stop()
