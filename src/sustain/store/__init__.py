"""Stores: the Tx seam the engine works through, and its implementations.

* ``tx``      - the ``Tx`` protocol and the row records the engine reads and writes.
* ``memory``  - a faithful in-memory store (unit tests, users' tests, ``sustain dev``).
* ``sqlite``  - the embedded and single-server store: one writer thread, group commit.
* ``postgres`` - the store of servers sharing one PostgreSQL database (clusters of replicas).
* ``sql``     - what the two SQL stores share: rows, the search builder, ``SqlTx``, migrations.
* ``errors``  - every error a store raises; no database driver's exception leaves the store.
"""
