"""Throw-away PostgreSQL databases for the tests (the real server, never a mock).

The tests expect PostgreSQL on 127.0.0.1:5432 with trust authentication (as CI and the dev
machines run it), or a maintenance URL in ``SUSTAIN_TEST_POSTGRES_URL``.  Each caller gets
its own database, ``CREATE``d under a unique name (pid + random suffix, so concurrent test
runs never collide) and ``DROP``ped ``WITH (FORCE)`` afterwards; databases left behind by a run
that was killed (its pid is gone) are dropped by the next one.  When no PostgreSQL answers,
the tests fail with that reason: the PostgreSQL store is part of the product.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import psycopg
import psycopg.conninfo
import pytest

ENV = "SUSTAIN_TEST_POSTGRES_URL"
CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/root",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/postgres",
)
PREFIX = "sustain_test_"


@lru_cache(maxsize=1)
def admin_url() -> str:
    """A URL of a database on which we may CREATE DATABASE."""
    tried = [os.environ[ENV]] if os.environ.get(ENV) else list(CANDIDATES)
    errors = []
    for url in tried:
        try:
            with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return url
        except psycopg.Error as exc:
            errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
    pytest.fail("no PostgreSQL for the tests (set SUSTAIN_TEST_POSTGRES_URL): " + "; ".join(errors))


def url_for(dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(admin_url())
    params["dbname"] = dbname
    user = params.get("user", "")
    host = params.get("host", "127.0.0.1")
    port = params.get("port", "5432")
    password = f":{params['password']}" if params.get("password") else ""
    return f"postgresql://{user}{password}@{host}:{port}/{dbname}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@lru_cache(maxsize=1)
def _drop_leftovers() -> None:
    """Drop the databases of test runs that died before their cleanup (their pid is gone)."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        names = [n for (n,) in conn.execute("SELECT datname FROM pg_database")]
        for name in names:
            parts = name[len(PREFIX) :].split("_") if name.startswith(PREFIX) else []
            if len(parts) == 2 and parts[0].isdigit() and not _alive(int(parts[0])):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def create_database() -> str:
    """Create an empty database with a unique name; return its URL."""
    _drop_leftovers()
    name = f"{PREFIX}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return url_for(name)


def drop_database(url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    assert isinstance(name, str) and name.startswith(PREFIX), name
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@contextmanager
def temp_database() -> Iterator[str]:
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)
