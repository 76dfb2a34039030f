"""The PostgreSQL store: replicas on one database, one transaction per operation.

* ``store``       - ``PostgresStore``: the pool, reruns of lost races, ``run``.
* ``tx``          - ``PostgresTx``: the engine's ``Tx`` as prepared statements, with the rows
  the transaction holds.
* ``pipeline``    - the libpq pipeline driver: one transaction's round trips, connection loss.
* ``values``      - parameters and result values in libpq's text format.
* ``statements``  - the SQL of ``PostgresTx`` (prepared and plain).
* ``cluster``     - ``PostgresCluster``: what several replicas add (LISTEN/NOTIFY, routing).
* ``migrations``  - applying ``store/schema/postgres/*.sql`` under an advisory lock.

Importing this package imports psycopg (the ``postgres`` extra).
"""

from sustain.store.errors import PostgresConnectError, StoreRaceError, StoreUnavailableError
from sustain.store.postgres.store import PostgresStore, connect, describe

__all__ = [
    "PostgresConnectError",
    "PostgresStore",
    "StoreRaceError",
    "StoreUnavailableError",
    "connect",
    "describe",
]
