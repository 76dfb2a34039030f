"""What the SQL stores (SQLite and PostgreSQL) share: rows, the search builder, migrations."""
