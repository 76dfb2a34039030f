"""Sustain instances in the three modes, on real components.

``mode`` runs a test embedded on an in-memory store, embedded on a real SQLite file, and
remote against one real ``sustain serve`` process per test module (started the way the
server tests do it).  ``make()`` builds a ``Sustain`` in that mode with a group of its own,
so tests sharing the server never receive each other's work; every instance is stopped at
the end of the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sustain import Sustain
from tests.servers import ServerProcess, start_server

MODES = ["memory", "file", "remote"]


def unique(prefix: str = "id") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def sdk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("sdk-server"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def retry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that offers a dropped execute again after 1 s, not the default 30 s: an
    execute sent to a killed worker, or that no connected worker may take (a version no one
    serves), comes back quickly without changing what a test shows."""
    proc = start_server(tmp_path_factory.mktemp("retry-server"), "--retry-timeout", "1000")
    yield proc
    proc.stop()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


Make = Callable[..., Sustain]


@pytest.fixture
def make(mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Make]:
    made: list[Sustain] = []
    db = tmp_path / "sustain.db"
    group = unique("g")

    def _make(**kwargs: Any) -> Sustain:
        kwargs.setdefault("group", group)
        if mode == "remote":
            server = request.getfixturevalue("sdk_server")
            sustain = Sustain(url=server.url, **kwargs)
        elif mode == "file":
            sustain = Sustain(store=str(db), **kwargs)
        else:
            sustain = Sustain(store=":memory:", **kwargs)
        made.append(sustain)
        return sustain

    yield _make
    for sustain in reversed(made):
        sustain.stop()
