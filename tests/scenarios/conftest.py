"""Scenario tests: no child process outlives its test, whatever the outcome; ``store``
runs a test once with the server on SQLite and once on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.scenarios.processes import SQLITE, Proc, Store
from tests.store.postgres_db import temp_database


@pytest.fixture(autouse=True)
def _reap_processes() -> Iterator[None]:
    yield
    Proc.reap()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The server's store for one run of a test; on PostgreSQL a database of its own, which
    every (re)start of the server in that test reuses, dropped once the test is over (after
    checking that the scenario's promises really were written there)."""
    if request.param == "sqlite":
        yield SQLITE
        return
    with temp_database() as url:
        yield Store(url)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM promises").fetchone()
        assert row is not None and row[0] > 0, "the server wrote no promise to PostgreSQL"
