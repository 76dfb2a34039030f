"""Throw-away PostgreSQL databases for the tests (the real server, never a mock).

The tests expect PostgreSQL on 127.0.0.1:5432 with trust authentication (as CI and the dev
machines run it), or a maintenance URL in ``SUSTAIN_TEST_POSTGRES_URL``.  Each caller gets
its own database, created and dropped by ``benchmarks.throwaway_db`` (shared with the
benchmarks).  When no PostgreSQL answers, the tests fail with that reason: the PostgreSQL
store is part of the product.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from benchmarks.throwaway_db import Databases, NoPostgres

PREFIX = "sustain_test_"
_databases = Databases(PREFIX, "SUSTAIN_TEST_POSTGRES_URL")


def admin_url() -> str:
    """A URL of a database on which we may CREATE DATABASE."""
    try:
        return _databases.admin_url
    except NoPostgres as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}")


def create_database() -> str:
    """Create an empty database with a unique name; return its URL."""
    admin_url()
    return _databases.create()


def drop_database(url: str) -> None:
    _databases.drop(url)


@contextmanager
def temp_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)
