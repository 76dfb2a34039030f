"""Prometheus metrics: the API port's ``GET /metrics``, and optionally a port of their own.

The counters live in a private registry (not the process-global default one) so that several
servers in one process (tests) do not collide.  Label children are cached in dicts: the
request path pays one dict lookup and one ``inc``/``observe``, not a ``labels()`` call.
Kinds outside the protocol's set are counted as ``unknown`` so that a client cannot create
unbounded label values; ``sustain.batch`` keeps its name (a batch counts once as itself and
once per element under the element's kind).  With ``observability.metrics = false`` every
method is a cheap no-op.

Where they are served (docs/security.md): ``App`` answers ``GET /metrics`` on the API port,
behind the API's authentication when it is on; ``serve`` adds the reference's separate,
unauthenticated listener only when ``observability.metrics_port`` asks for one.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    start_http_server,
)

from sustain.protocol.envelope import BATCH
from sustain.protocol.requests import KINDS

_LABELLED = KINDS | {BATCH}
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()


class Metrics:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "sustain_request_total", "API requests", ["kind", "status"], registry=self.registry
        )
        self._duration = Histogram(
            "sustain_request_duration_seconds",
            "API request duration",
            ["kind"],
            registry=self.registry,
        )
        self._messages = Counter(
            "sustain_messages_total", "Outbox messages claimed", ["kind"], registry=self.registry
        )
        self._deliveries = Counter(
            "sustain_deliveries_total", "Message deliveries", ["status"], registry=self.registry
        )
        self._scheduled = Counter(
            "sustain_schedule_promises_total",
            "Promises created by schedules",
            registry=self.registry,
        )
        self._request_children: dict[tuple[str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def serve(self, bind: str, port: int) -> None:
        """Expose ``/metrics`` on ``bind:port`` (a daemon thread).  The reference always binds
        0.0.0.0; Sustain uses the API's bind address, so a server kept on 127.0.0.1 does not
        publish its metrics to the network."""
        start_http_server(port, addr=bind, registry=self.registry)

    def exposition(self) -> bytes:
        """The Prometheus text of every metric."""
        return generate_latest(self.registry)

    def request(self, kind: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        if kind not in _LABELLED:
            kind = "unknown"
        key = (kind, status)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self._requests.labels(kind, str(status))
        child.inc()
        hist = self._duration_children.get(kind)
        if hist is None:
            hist = self._duration_children[kind] = self._duration.labels(kind)
        hist.observe(seconds)

    def messages(self, kind: str, count: int) -> None:
        if self.enabled and count:
            self._messages.labels(kind).inc(count)

    def schedule_promises(self, count: int) -> None:
        if self.enabled:
            self._scheduled.inc(count)

    def delivery(self, status: str) -> None:
        if self.enabled:
            self._deliveries.labels(status).inc()
