"""``sustain migrate``: apply the store's schema migrations now, and say what was applied.

``sustain serve`` migrates at start anyway; this command lets an operator do it explicitly
(before rolling out replicas, or to check a database) and see the result.  The store is
chosen like ``serve`` chooses it: ``--postgres URL`` or ``--sqlite-path PATH``, else the
layered configuration (``sustain.toml`` < ``SUSTAIN_*`` environment, e.g.
``SUSTAIN_STORAGE__POSTGRES__URL``).  Running it twice applies nothing the second time.
On PostgreSQL the migrations run in one transaction under the advisory lock the servers
use, so it is safe while replicas start; an SQLite file must not be open in a server
(its lock is taken, as ``serve`` does).

Problems (bad URL, unreachable database, a file held by a server) print one ``Error:`` line
and exit 1.
"""

from __future__ import annotations

from typing import Any

import click

from sustain import extras
from sustain.cli.errors import CliError
from sustain.errors import MissingExtraError
from sustain.runtime.config import ConfigError, ServerConfig, load
from sustain.store.errors import StoreError
from sustain.store.sql.migrations import Migration, load_migrations


def _postgres(url: str) -> tuple[str, list[Migration], int]:
    # Imported here: psycopg (the postgres extra) is only needed for PostgreSQL.
    extras.require("'sustain migrate --postgres'", "psycopg")
    from sustain.store import postgres  # noqa: PLC0415
    from sustain.store.postgres import migrations as postgres_migrations  # noqa: PLC0415

    where = postgres.describe(url)
    conn = postgres.connect(url)
    try:
        applied = postgres_migrations.migrate(conn, where)
    finally:
        conn.close()
    return where, applied, max(m.version for m in postgres_migrations.migrations())


def _sqlite(path: str) -> tuple[str, list[Migration], int]:
    from sustain.store.sqlite import SqliteStore  # noqa: PLC0415

    known = load_migrations()
    with SqliteStore(path) as store:
        versions = set(store.applied_migrations)
    return path, [m for m in known if m.version in versions], max(m.version for m in known)


@click.command("migrate")
@click.option("--postgres", "postgres_url", default=None, help="PostgreSQL URL to migrate.")
@click.option("--sqlite-path", "sqlite_path", default=None, help="SQLite file to migrate.")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="configuration file (default ./sustain.toml if present)",
)
def migrate(postgres_url: str | None, sqlite_path: str | None, config_path: str | None) -> None:
    """Apply the store's schema migrations and print what was applied."""
    if postgres_url and sqlite_path:
        raise CliError("give --postgres or --sqlite-path, not both")
    flags: dict[str, Any] = {}
    if postgres_url:
        flags = {"storage.type": "postgres", "storage.postgres.url": postgres_url}
    elif sqlite_path:
        flags = {"storage.type": "sqlite", "storage.sqlite.path": sqlite_path}
    try:
        config: ServerConfig = load(flags=flags, config_path=config_path)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    storage = config.storage
    try:
        if storage.type == "postgres":
            assert storage.postgres.url is not None  # validated by load
            where, applied, latest = _postgres(storage.postgres.url)
        elif storage.type == "sqlite":
            where, applied, latest = _sqlite(storage.sqlite.path)
        else:
            raise CliError(f"storage type '{storage.type}' has no schema to migrate")
    except (StoreError, OSError, MissingExtraError) as exc:
        raise CliError(str(exc)) from None
    for m in applied:
        click.echo(f"applied {m.version:04d}_{m.name} to {where}")
    if not applied:
        click.echo(f"{where} is up to date (schema version {latest}): nothing to apply")
