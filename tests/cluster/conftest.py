"""Fixtures for the cluster tests: real ``sustain serve --postgres`` replicas on one database.

``cluster`` gives a ``Replicas`` on a throw-away database (tests/store/postgres_db.py):
``start(name, *flags)`` runs one replica named ``name`` (``--replica-id``) with a short
replica timeout, ``kill9(name)`` crashes it, ``start`` again with the same name restarts it
on its old port.  At the end, whatever the outcome, the workers and clients the test started
(``tests.scenarios.processes.Proc``) are killed, every replica still running is stopped
(SIGTERM), then the database is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.scenarios.processes import Proc
from tests.servers import ServerProcess, start_server
from tests.store.postgres_db import temp_database

# A replica silent this long is dead: short, so the tests see takeovers within seconds.
REPLICA_TIMEOUT_MS = 1500


class Replicas:
    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.url = url
        self.running: dict[str, ServerProcess] = {}
        self.ports: dict[str, int] = {}

    def start(self, name: str, *flags: str) -> ServerProcess:
        assert name not in self.running, name
        proc = start_server(
            self.tmp,
            "--postgres",
            self.url,
            "--replica-id",
            name,
            "--cluster-replica-timeout",
            str(REPLICA_TIMEOUT_MS),
            *flags,
            port=self.ports.get(name),
        )
        self.running[name] = proc
        self.ports[name] = proc.port
        return proc

    def kill9(self, name: str) -> None:
        proc = self.running.pop(name)
        proc.proc.kill()
        proc.proc.wait(timeout=10)
        proc.client.close()

    def sql(self, query: str, params: Any = ()) -> list[Any]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def stop_all(self) -> None:
        for proc in self.running.values():
            proc.stop()
        self.running.clear()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Replicas]:
    with temp_database() as url:
        replicas = Replicas(tmp_path, url)
        try:
            yield replicas
        finally:
            # The workers first: they outlive a passing test too (nothing else stops them).
            Proc.reap()
            replicas.stop_all()
