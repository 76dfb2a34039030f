"""The SQLite store: one file, one writer thread, group commit.

* ``store``       - ``SqliteStore``: the lock file, the connection, the threads, ``run``.
* ``writer``      - the group-commit writer thread that owns the connection.
* ``sync``        - the WAL syncer: answers after an fdatasync (``synchronous="FULL"``).
* ``checkpoint``  - the checkpoint thread.
* ``waiters``     - how the writer answers threads and coroutines.
* ``tx``          - ``SqliteTx``: the engine's ``Tx`` as SQL, with its row cache.
* ``statements``  - the SQL of ``SqliteTx``.
* ``migrations``  - applying ``store/schema/*.sql``.
"""

from sustain.store.sqlite.store import MEMORY, SqliteStore

__all__ = ["MEMORY", "SqliteStore"]
