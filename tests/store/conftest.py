"""Fixtures for the store contract suite: the same tests over every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sustain.store.base import Store
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    s: Store = (
        MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "sustain.db"))
    )
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "sustain.db")
