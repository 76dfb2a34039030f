"""The Sustain server: an ASGI app on uvicorn over the engine and a store.

* ``config``   - layered configuration (defaults < sustain.toml < SUSTAIN_* < flags).
* ``app``      - the raw ASGI app: ``POST /``, ``GET /poll/{group}/{id}``, health, legacy 410.
* ``poll``     - the registry of SSE poll connections and the uni/any selection rules.
* ``delivery`` - the outbox loop: claim messages, send them to poll connections or HTTP push.
* ``loops``    - the timer loop that ticks the engine at the next deadline.
* ``clock``    - the wall clock in ms, made monotonic.
* ``metrics``  - Prometheus counters on their own port.
* ``runtime``  - ``run(config)``: build store, engine and app, serve with uvicorn.
* ``auth``     - JWT authentication and per-prefix authorization.
"""
