"""Numbered schema migrations for the SQLite store.

Migrations are the files ``store/schema/NNNN_name.sql`` (sql/migrations.py loads them), applied
in version order.  Each runs in its own ``BEGIN IMMEDIATE ... COMMIT`` together with the row
that records it in ``schema_migrations``, so a migration is either wholly applied and recorded
or not at all, and reopening a database applies only what is missing.  A database that
records a version this code does not know was written by a newer Sustain: refuse it rather
than guess.

The store's file lock guarantees a single process migrates a given file at a time.
"""

from __future__ import annotations

import sqlite3

from sustain.store.sql.migrations import load_migrations, pending


def applied_versions(conn: sqlite3.Connection) -> list[int]:
    rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    return [int(v) for (v,) in rows]


def migrate(conn: sqlite3.Connection, path: str) -> list[int]:
    """Apply the missing migrations; return the versions applied now (empty if none).

    ``conn`` must be in autocommit mode (``isolation_level=None``): transactions here are
    explicit.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY,"
        " name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)"
    )
    known = load_migrations()
    done = set(applied_versions(conn))
    applied: list[int] = []
    for migration in pending(known, done, path):
        # executescript takes no parameters; version and name are digits and [a-z0-9_]
        # (checked by _NAME), so embedding them is safe.
        script = (
            "BEGIN IMMEDIATE;\n"
            f"{migration.sql}\n;\n"
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES "
            f"({migration.version}, '{migration.name}', "
            "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));\n"
            "COMMIT;\n"
        )
        try:
            conn.executescript(script)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
