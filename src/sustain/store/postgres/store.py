"""``PostgresStore``: the store on PostgreSQL, for servers that share one database.

Theory of operation
-------------------
Opening connects once, applies the missing schema migrations under an advisory lock
(migrations.py: replicas starting together migrate once), then opens a
``psycopg_pool.ConnectionPool`` of ``pool_size`` connections (each prepares the Tx's
statements once, ``pipeline.prepare``) and a thread pool of the same size for
``run_async``.

``run(op)`` takes a connection, hands ``op`` a ``PostgresTx`` (tx.py: one
transaction at READ COMMITTED, sent as a libpq pipeline, which locks what the engine reads to
write) and commits: one engine operation is one PostgreSQL transaction, and nothing is
answered before its COMMIT returned.  Connections run with ``synchronous_commit = on``, so a
COMMIT returns once the WAL record is flushed: every acknowledged write survives a crash of
the server or of the database.

Races.  Operations on the same rows wait for each other's row locks and then see the
committed result.  Three outcomes of a race abort a transaction instead: a deadlock (two
operations locking two promises in opposite orders), a unique violation (two creates of one
id: the second insert fails once the first commits) and a serialization failure.  The store
runs the operation again from the start, a few times with a short random back-off; the
engine is a pure function of the rows it reads, so the rerun decides afresh (the second
create now finds the promise and answers as for an existing one).  When every attempt lost,
``StoreRaceError`` (a ``CommitError``): the server answers 503 ``Service unavailable: retry``
and Sustain's SDK retries.  A connection found broken before the operation's last trip
(its queued writes and COMMIT, pipeline.py) committed nothing: the operation runs again on
a fresh connection.  One that breaks during that trip, or a database that is down
(``StoreUnavailableError``, also a ``CommitError``), is a 503 and is not rerun here: a
COMMIT cut off midway may or may not have happened, and only the client may decide to retry.
"Broken" is any sign that the session ended, wherever in the pipeline it shows: the socket
closed, or the backend's FATAL error (``pg_terminate_backend``, a shutdown) arriving in place
of a statement's answer; the Tx then closes the connection, so the pool replaces it.
``lock_timeout`` bounds a wait behind a stuck transaction (also a 503).

PostgreSQL text cannot hold NUL characters: a request carrying one in a stored or searched
string gets 400 ``Invalid request: ...`` on this store (SQLite stores it).  Promise ids are
already refused with NUL by the protocol.

Several replicas on one database: the timer and outbox queries claim with ``FOR UPDATE SKIP
LOCKED``, so several replicas run the loops at once without doing anything twice or waiting
on each other.  What else a cluster needs (LISTEN/NOTIFY wake-ups, routing of poll messages
to the replica holding the stream, redelivery of what a dead replica claimed, draining) is
in cluster.py.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
import psycopg.conninfo
import psycopg.errors
from psycopg_pool import ConnectionPool

from sustain.protocol.errors import ProtocolError
from sustain.store.errors import (
    PostgresConnectError,
    StoreClosedError,
    StoreRaceError,
    StoreUnavailableError,
)
from sustain.store.errors import first_line as _first_line
from sustain.store.postgres.migrations import migrate
from sustain.store.postgres.pipeline import prepare
from sustain.store.postgres.tx import PostgresTx
from sustain.store.postgres.values import NUL_MESSAGE
from sustain.store.tx import Tx

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS = 5
POOL_SIZE = 10
CONNECT_TIMEOUT = 10.0
ACQUIRE_TIMEOUT = 5.0
LOCK_TIMEOUT_MS = 10_000
NUL_ANSWER = "Invalid request: strings must not contain NUL (0x00) characters"

# Aborts that a rerun of the operation resolves (see the module docstring).
_RACES: tuple[type[BaseException], ...] = (
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    psycopg.errors.UniqueViolation,
)


class _ConnectionLost(Exception):
    """Internal: the connection broke before COMMIT; the operation may run again."""

    def __init__(self, cause: psycopg.OperationalError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def describe(url: str) -> str:
    """``url`` for messages and logs, without its password: ``user@host:port/dbname``."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "<invalid URL>"
    user = str(info.get("user") or "")
    host = str(info.get("host") or "localhost")
    port = str(info.get("port") or 5432)
    db = str(info.get("dbname") or user)
    return f"{user + '@' if user else ''}{host}:{port}/{db}"


def _configure(conn: psycopg.Connection[Any]) -> None:
    """Every pooled connection: autocommit outside ``transaction()`` blocks, READ COMMITTED
    inside, commits flushed before they return, lock waits bounded."""
    conn.autocommit = True
    conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
    conn.execute(
        f"SET synchronous_commit = on; SET lock_timeout = {LOCK_TIMEOUT_MS};"
        " SET idle_in_transaction_session_timeout = 60000"
    )


def _configure_pooled(conn: psycopg.Connection[Any]) -> None:
    """A connection of the store's pool: configured, and the Tx's statements prepared."""
    _configure(conn)
    prepare(conn)


def connect(url: str, connect_timeout: float = CONNECT_TIMEOUT) -> psycopg.Connection[Any]:
    """One configured connection (migrations, ``sustain migrate``); raises
    ``PostgresConnectError`` with a one-line reason."""
    where = describe(url)
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise PostgresConnectError(
            where, f"invalid URL (expected postgresql://user@host:port/dbname): {_first_line(exc)}"
        ) from None
    try:
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(1, round(connect_timeout)),
            application_name="sustain",
        )
    except psycopg.Error as exc:
        raise PostgresConnectError(where, exc) from None
    try:
        _configure(conn)
    except BaseException:
        conn.close()
        raise
    return conn


class PostgresStore:
    """A ``Store`` on the PostgreSQL database at ``url`` (a ``postgresql://`` URL or a
    libpq connection string)."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = POOL_SIZE,
        connect_timeout: float = CONNECT_TIMEOUT,
        attempts: int = ATTEMPTS,
    ) -> None:
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, not {pool_size}")
        self.url = url
        self.where = describe(url)
        self.attempts = attempts
        self.races = 0  # operations rerun after losing a race (a gauge for tests/metrics)
        conn = connect(url, connect_timeout)
        try:
            self.applied_migrations = [m.version for m in migrate(conn, self.where)]
        finally:
            conn.close()
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"application_name": "sustain"},
            configure=_configure_pooled,
            open=False,
            name="sustain",
            timeout=connect_timeout,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except Exception as exc:
            self._pool.close()
            raise PostgresConnectError(self.where, exc) from None
        self._executor = ThreadPoolExecutor(pool_size, thread_name_prefix="sustain-pg")
        log.info(
            "PostgreSQL store at %s: %d connections, migrations applied now: %s",
            self.where,
            pool_size,
            self.applied_migrations or "none",
        )
        self._closed = False
        # How long an operation waits for a connection (only while the pool is (re)opening
        # them: run_async never has more operations in flight than connections).
        self._timeout = min(connect_timeout, ACQUIRE_TIMEOUT)

    def run(self, op: Callable[[Tx], T], durable: bool = True) -> T:
        """Run ``op`` in one transaction; return its result once COMMIT returned.

        ``durable=False`` commits that one transaction with ``synchronous_commit = off``: it
        answers before the WAL flush, and the next durable commit (whose flush covers every
        earlier WAL record) makes it durable too (base.py)."""
        if self._closed:
            raise StoreClosedError(self.where)
        for attempt in range(1, self.attempts + 1):
            try:
                return self._once(op, durable)
            except _RACES as exc:
                if attempt == self.attempts:
                    raise StoreRaceError(self.where, attempt, exc) from exc
                self.races += 1
                log.debug("rerunning an operation that lost a race: %s", _first_line(exc))
                # Random back-off: two operations that deadlocked do not collide again.
                time.sleep(random.uniform(0, 0.002 * attempt))
            except _ConnectionLost as lost:
                # Nothing was committed: run it again on another connection (the pool drops
                # the broken one), e.g. after the database restarted or failed over.
                if attempt == self.attempts:
                    raise StoreUnavailableError(self.where, lost.cause) from lost.cause
                log.info("connection lost, rerunning on another: %s", _first_line(lost.cause))
            except psycopg.DataError as exc:
                if NUL_MESSAGE in str(exc):
                    raise ProtocolError(400, NUL_ANSWER) from None
                raise
            except psycopg.OperationalError as exc:  # includes the pool's PoolTimeout
                raise StoreUnavailableError(self.where, exc) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    def _once(self, op: Callable[[Tx], T], durable: bool) -> T:
        used: psycopg.Connection[Any] | None = None
        tx: PostgresTx | None = None
        try:
            with self._pool.connection(timeout=self._timeout) as conn:
                used = conn
                tx = PostgresTx(conn, durable)
                try:
                    result = op(tx)
                    tx.commit()
                except BaseException:
                    tx.abort()
                    raise
                return result
        except psycopg.OperationalError as exc:
            # A connection that broke before the final trip (the last writes and COMMIT) was
            # sent committed nothing: safe to rerun.  One that broke during it may or may not
            # have committed: a 503.
            lost = used is not None and (used.broken or (tx is not None and tx.lost))
            if lost and not (tx is not None and tx.committing):
                raise _ConnectionLost(exc) from exc
            raise

    async def run_async(self, op: Callable[[Tx], T], durable: bool = True) -> T:
        """``run`` on the store's own threads (one per pooled connection)."""
        if self._closed:
            raise StoreClosedError(self.where)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.run, op, durable)

    def ping(self, timeout: float = 5.0) -> bool:
        """True when a pooled connection answers ``SELECT 1`` within ``timeout`` s."""
        if self._closed:
            return False
        try:
            with self._pool.connection(timeout=timeout) as conn:
                row = conn.execute("SELECT 1").fetchone()
            return row is not None and row[0] == 1
        except (psycopg.Error, OSError) as exc:
            log.warning("PostgreSQL ping failed: %s", _first_line(exc))
            return False

    def close(self) -> None:
        """Let running operations finish, then close every connection."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
