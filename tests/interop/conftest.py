"""Fixtures of the interop suite: the official SDKs' environments and a Sustain server.

``interop_env`` (session) builds or reuses ``.cache/interop/`` (see ``env.py``) and fails the
tests with the build's output if it cannot: CI has network access, so a missing SDK is an
error, never a skip.  ``server`` is one ``sustain serve`` per test module with short retry
and poll intervals; every case runs in groups and ids of its own, so cases share it safely.
``launch`` starts official-SDK programs and Sustain workers against it and stops them after
the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop import env
from tests.interop.harness import Launcher
from tests.servers import ServerProcess, start_server

# Short timers so that a lost lease or an undelivered execute is retried in seconds, not 30 s.
SERVER_FLAGS = ("--retry-timeout", "1000", "--timeouts-poll-interval", "500")


@pytest.fixture(scope="session")
def interop_env() -> env.Environment:
    try:
        return env.build()
    except env.InteropEnvironmentError as exc:
        pytest.fail(f"cannot build the official SDKs' environment (.cache/interop): {exc}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("interop-server"), *SERVER_FLAGS)
    yield proc
    proc.stop()


@pytest.fixture
def launch(
    interop_env: env.Environment, server: ServerProcess, tmp_path: Path
) -> Iterator[Launcher]:
    launcher = Launcher(interop_env, server.url, tmp_path)
    yield launcher
    launcher.close()
