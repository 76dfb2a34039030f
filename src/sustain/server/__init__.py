"""The Sustain server: the process runtime (sustain.runtime) served over HTTP by uvicorn.

* ``app``      - the raw ASGI app: ``POST /``, ``GET /poll/{group}/{id}``, health, legacy 410.
* ``sse``      - the SSE poll streams (registered in the runtime's poll registry).
* ``runtime``  - ``run(config)``: build the runtime and app, serve with uvicorn.
* ``auth``     - JWT authentication and per-prefix authorization.
* ``tracing``  - OpenTelemetry spans of requests (the otel extra).
* ``ui``       - the browser UI.

Needs the ``server`` extra (uvicorn, httptools, prometheus-client, PyJWT); the configuration,
store, engine, loops and poll registry are in ``sustain.runtime``, shared with the embedded SDK.
"""
