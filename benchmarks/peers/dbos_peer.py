"""DBOS runs: one ``dbos_app.py`` process per run, on SQLite or on PostgreSQL.

Every run gets a fresh system database: a new SQLite file in a temporary directory, or a
new PostgreSQL database (``CREATE DATABASE`` on the server at ``--pg-url``, trust auth on
127.0.0.1:5432 here) dropped after the run.  The process launches DBOS, runs a warm-up
workflow, times the workload and prints the raw results (``dbos_app.py``); its own CPU
time over the timed part is the ``caller`` CPU.  On PostgreSQL the database server's CPU is
not counted (it serves other processes too).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.harness import REPO
from benchmarks.peers.envs import PythonEnv, Unavailable
from benchmarks.peers.workloads import Row, to_row

APP = REPO / "benchmarks" / "peers" / "dbos_app.py"
RUN_TIMEOUT = 900.0
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def check_postgres(admin_url: str) -> None:
    """Raise ``Unavailable`` if the PostgreSQL server cannot be reached."""
    try:
        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
        raise Unavailable(f"PostgreSQL at {admin_url}: {reason}") from exc


@contextlib.contextmanager
def _postgres_database(admin_url: str) -> Iterator[str]:
    name = f"sustain_bench_dbos_{os.getpid()}_{time.time_ns()}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _sqlite_database() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="sustain-bench-dbos-"))
    try:
        yield f"sqlite:///{folder / 'dbos.sqlite'}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_once(
    env: PythonEnv, backend: str, workload: str, mode: str, size: int, *, pg_url: str
) -> Row:
    """One checked row; raises on a crash of the DBOS process (the caller records it)."""
    database = _sqlite_database() if backend == "sqlite" else _postgres_database(pg_url)
    with database as db_url:
        # -P: the script's folder is not put on sys.path (its modules must not shadow any
        # of DBOS's imports).
        cmd = [str(env.python), "-P", str(APP), "--db-url", db_url,
               "--workload", workload, "--size", str(size)]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
            env={k: v for k, v in os.environ.items() if not k.startswith("DBOS_")},
        )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"dbos_app.py exited {done.returncode}: {tail[0][:300]}")
    raw = json.loads(lines[-1])
    row = to_row(workload, mode, size, raw, {"caller": float(raw["cpu_s"])})
    row["sqlite_version"] = raw.get("sqlite_version") if backend == "sqlite" else None
    return row
