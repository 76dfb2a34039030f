"""Numbered schema migrations for the PostgreSQL store.

The migrations are the files ``schema/postgres/NNNN_name.sql`` (loaded by
``migrations.load_migrations``), applied in version order and recorded in
``schema_migrations`` (version, name, applied_at), as on SQLite.

Several replicas may start at once against one database, so ``migrate`` runs in **one**
transaction that first takes a transaction-scoped advisory lock
(``pg_advisory_xact_lock``): the first replica applies what is missing and commits; the
others wait on the lock, then find every version recorded and apply nothing.  PostgreSQL's
DDL is transactional, so a failing migration leaves no half-built table behind, and the lock
is released with the transaction whatever happens.  A database that records a version this
code does not know was migrated by a newer Sustain: refuse it (``SchemaVersionError``).
"""

from __future__ import annotations

from typing import Any

import psycopg

from sustain.store.errors import PostgresConnectError
from sustain.store.sql.migrations import Migration, load_migrations, pending

FOLDER = "schema/postgres"
# Any constant works: it only has to be the same for every Sustain process.  ("sustain" in
# ASCII, as a bigint.)
ADVISORY_LOCK = 0x7375737461696E

_CREATE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())"
)


def migrations() -> list[Migration]:
    return load_migrations(FOLDER)


def migrate(conn: psycopg.Connection[Any], where: str) -> list[Migration]:
    """Apply the missing migrations in one locked transaction; return those applied now.

    ``conn`` must be idle (autocommit, or not inside a transaction block).  A failure of the
    database is a ``PostgresConnectError`` (the store cannot open), never psycopg's own.
    """
    try:
        return _migrate(conn, where)
    except psycopg.Error as exc:
        raise PostgresConnectError(where, exc) from None


def _migrate(conn: psycopg.Connection[Any], where: str) -> list[Migration]:
    known = migrations()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        conn.execute(_CREATE)
        done = {int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations")}
        applied: list[Migration] = []
        for migration in pending(known, done, where):
            # A migration file holds several statements: sent as one simple query (no
            # parameters), which PostgreSQL runs inside the enclosing transaction.
            conn.execute(migration.sql.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
            applied.append(migration)
    return applied
