"""Numbered schema migrations, as shipped: the files ``store/schema/NNNN_name.sql`` (SQLite)
and ``store/schema/postgres/NNNN_name.sql`` (PostgreSQL), by version.  Each store applies them
its own way (sqlite/migrations.py, postgres/migrations.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from sustain.store.errors import SchemaVersionError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(folder: str = "schema") -> list[Migration]:
    """Every migration shipped with the package in ``folder`` (``schema`` for SQLite,
    ``schema/postgres`` for PostgreSQL), by version."""
    found: list[Migration] = []
    for entry in resources.files("sustain.store").joinpath(*folder.split("/")).iterdir():
        match = _NAME.match(entry.name)
        if match is None or not entry.is_file():
            continue
        found.append(
            Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8"))
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate schema migration versions: {versions}")
    return found


def pending(known: list[Migration], done: set[int], where: str) -> list[Migration]:
    """The known migrations not applied yet, by version; a database that holds a version this
    code does not know was migrated by a newer Sustain: ``SchemaVersionError``."""
    unknown = sorted(done - {m.version for m in known})
    if unknown:
        raise SchemaVersionError(where, unknown)
    return [m for m in known if m.version not in done]
