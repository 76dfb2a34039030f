"""Throw-away PostgreSQL databases, for the benchmarks and the tests alike.

Each caller gets its own database, ``CREATE``d under a unique name (prefix + pid + random
suffix, so concurrent runs never collide) and ``DROP``ped ``WITH (FORCE)`` afterwards;
databases left behind by a run that was killed (its pid is gone) are dropped by the next
one.  The maintenance URL comes from an environment variable, else the first of the local
trust-auth candidates that answers.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

import psycopg
import psycopg.conninfo

CANDIDATES = (
    "postgresql://postgres@127.0.0.1:5432/postgres",
    "postgresql://root@127.0.0.1:5432/root",
    "postgresql://postgres@127.0.0.1:5432/test",
    "postgresql://root@127.0.0.1:5432/postgres",
)


class NoPostgres(RuntimeError):
    """No candidate PostgreSQL answered; the message says what each one said."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Databases:
    """The throw-away databases named ``{prefix}{pid}_{hex}`` of one kind of run."""

    def __init__(self, prefix: str, env: str) -> None:
        self.prefix = prefix
        self.env = env

    @cached_property
    def admin_url(self) -> str:
        """A URL of a database on which we may CREATE DATABASE."""
        tried = [os.environ[self.env]] if os.environ.get(self.env) else list(CANDIDATES)
        errors = []
        for url in tried:
            try:
                with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return url
            except psycopg.Error as exc:
                errors.append(f"{url}: {str(exc).strip().splitlines()[0]}")
        raise NoPostgres(f"no PostgreSQL answered (set {self.env}): " + "; ".join(errors))

    def url_for(self, dbname: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.admin_url)
        user = params.get("user", "")
        host = params.get("host", "127.0.0.1")
        port = params.get("port", "5432")
        password = f":{params['password']}" if params.get("password") else ""
        return f"postgresql://{user}{password}@{host}:{port}/{dbname}"

    @cached_property
    def _leftovers_dropped(self) -> bool:
        """Drop the databases of runs that died before their cleanup (their pid is gone)."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for (name,) in conn.execute("SELECT datname FROM pg_database").fetchall():
                parts = name[len(self.prefix) :].split("_") if name.startswith(self.prefix) else []
                if len(parts) == 2 and parts[0].isdigit() and not _alive(int(parts[0])):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return True

    def create(self) -> str:
        """Create an empty database with a unique name; return its URL."""
        assert self._leftovers_dropped
        name = f"{self.prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        assert isinstance(name, str) and name.startswith(self.prefix), name
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def temp(self) -> Iterator[str]:
        """A new empty database, dropped on exit; yields its URL."""
        url = self.create()
        try:
            yield url
        finally:
            self.drop(url)
