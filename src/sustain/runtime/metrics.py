"""Prometheus metrics: the API port's ``GET /metrics``, and optionally a port of their own.

The counters live in a private registry (not the process-global default one) so that several
servers in one process (tests) do not collide.  Label children are cached in dicts: the
request path pays one dict lookup and one ``inc``/``observe``, not a ``labels()`` call.
Kinds outside the protocol's set are counted as ``unknown`` so that a client cannot create
unbounded label values; ``sustain.batch`` keeps its name (a batch counts once as itself and
once per element under the element's kind).  With ``observability.metrics = false`` every
method is a cheap no-op that never imports prometheus-client: the embedded SDK runs without
the package (the ``metrics`` and ``server`` extras install it; metrics on without it is a
one-line ``MissingExtraError``).

Where they are served (docs/security.md): ``App`` answers ``GET /metrics`` on the API port,
behind the API's authentication when it is on; ``serve`` adds the reference's separate,
unauthenticated listener only when ``observability.metrics_port`` asks for one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sustain import extras
from sustain.protocol.envelope import BATCH
from sustain.protocol.requests import KINDS

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from sustain.engine.queue_ops import QueueInfo
    from sustain.runtime.queue_metrics import QueueCollector

_LABELLED = KINDS | {BATCH}


class Metrics:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        if not enabled:
            return
        extras.require("serving metrics", "prometheus_client")
        # Imported here: only a process that serves metrics loads prometheus-client.
        from prometheus_client import CollectorRegistry, Counter, Histogram  # noqa: PLC0415

        self.registry: CollectorRegistry = CollectorRegistry()
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
        self._queues: tuple[Callable[[], Awaitable[list[QueueInfo]]], QueueCollector] | None = None
        self._request_children: dict[tuple[str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}

    def serve(self, bind: str, port: int) -> None:
        """Expose ``/metrics`` on ``bind:port`` (a daemon thread).  The reference always binds
        0.0.0.0; Sustain uses the API's bind address, so a server kept on 127.0.0.1 does not
        publish its metrics to the network."""
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(port, addr=bind, registry=self.registry)

    def exposition(self) -> tuple[bytes, bytes]:
        """The Prometheus text of every metric, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        return generate_latest(self.registry), CONTENT_TYPE_LATEST.encode()

    def watch_queues(self, read: Callable[[], Awaitable[list[QueueInfo]]]) -> None:
        """Report the queues ``read`` answers (runtime/queue_metrics.py), read at each
        ``refresh``."""
        if not self.enabled:
            return
        from sustain.runtime.queue_metrics import QueueCollector  # noqa: PLC0415

        collector = QueueCollector()
        self.registry.register(collector)
        self._queues = (read, collector)

    async def refresh(self) -> None:
        """Read what the store-backed metrics show (before ``exposition``)."""
        if self.enabled and self._queues is not None:
            read, collector = self._queues
            collector.reading = await read()

    def replica(self, replica: str) -> None:
        """The replica's id as a metric label: ``sustain_replica_info{replica="..."} 1``."""
        if not self.enabled:
            return
        from prometheus_client import Gauge  # noqa: PLC0415

        Gauge(
            "sustain_replica_info", "This server's replica id", ["replica"], registry=self.registry
        ).labels(replica).set(1)

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
