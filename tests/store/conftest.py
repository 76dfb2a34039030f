"""Fixtures for the store contract suite: the same tests over every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sustain.store.base import Store
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore
from tests.store.postgres_db import temp_database


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """One throw-away database for the session; ``store`` empties it before each test."""
    with temp_database() as url:
        yield url


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SqliteStore(str(tmp_path / "sustain.db"))
    else:
        from sustain.store.postgres import PostgresStore

        s = PostgresStore(request.getfixturevalue("postgres_url"), pool_size=4)
        s.run(lambda tx: tx.reset())
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "sustain.db")
