"""The process runtime under both the server and the embedded SDK: no HTTP in it.

* ``core``     - ``Runtime``: store, engine, clock, poll registry, outbox and timer loops.
* ``config``   - layered configuration (defaults < sustain.toml < SUSTAIN_* < flags).
* ``poll``     - the registry of poll connections (SSE streams, in-process subscribers) and
  the uni/any selection rules.
* ``delivery`` - the outbox loop: claim messages, send them to poll connections or HTTP push.
* ``loops``    - the timer loop that ticks the engine at the next deadline.
* ``clock``    - the wall clock in ms, made monotonic.
* ``cluster``  - the seam a PostgreSQL replica's cluster implements, and the replica id.
* ``metrics``  - Prometheus counters (prometheus-client, only when metrics are served).

Layers: ``server`` and ``sdk`` import this package; it imports ``engine``, ``store`` and
``protocol``, never ``server``, ``sdk`` or ``cli`` (the import-linter contracts in
pyproject.toml).
"""
