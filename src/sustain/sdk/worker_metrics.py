"""Prometheus metrics of a worker process (``sustain worker --metrics-port N``).

``enable(port, bind)`` builds the metrics in a private registry and serves ``/metrics`` from
a daemon thread (prometheus-client's ``start_http_server``); until then ``current`` is None
and every hook is skipped, so a worker without the flag pays nothing.

* ``sustain_worker_tasks_running`` (gauge): task attempts this process is running now.
* ``sustain_worker_task_attempts_total{outcome}`` (counter): finished attempts by outcome
  (``fulfilled``: this process settled the task's promise; ``returned``: suspended,
  released, or the lease was lost; ``error``: the attempt raised).
* ``sustain_worker_step_seconds{kind}`` (histogram): latency of durable calls that did work
  (run / rpc / sleep / promise / detached), from the call to its outcome in this pass.  For a
  ``run`` that is the step's execution and checkpoint; for a remote call it is the time to
  create it (the wait for its result spans passes and is in the timeline, not here).
* ``sustain_worker_retries_total{function}`` (counter): retries of a function's body after
  it raised (its retry policy allowed another attempt).

prometheus-client (the ``metrics`` extra) is imported by ``enable`` only: the replay runtime
imports this module for its hooks, and a process that serves no metrics must not need it.
"""

from __future__ import annotations

from sustain import extras

STEP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WorkerMetrics:
    def __init__(self) -> None:
        extras.require("serving worker metrics", "prometheus_client")
        from prometheus_client import (  # noqa: PLC0415
            CollectorRegistry,
            Counter,
            Gauge,
            Histogram,
        )

        self.registry = CollectorRegistry()
        self.running = Gauge(
            "sustain_worker_tasks_running", "Task attempts running", registry=self.registry
        )
        self.attempts = Counter(
            "sustain_worker_task_attempts_total",
            "Finished task attempts",
            ["outcome"],
            registry=self.registry,
        )
        self.steps = Histogram(
            "sustain_worker_step_seconds",
            "Durable call latency",
            ["kind"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )
        self.retries = Counter(
            "sustain_worker_retries_total",
            "Function retries after an error",
            ["function"],
            registry=self.registry,
        )

    def serve(self, bind: str, port: int) -> None:
        from prometheus_client import start_http_server  # noqa: PLC0415

        start_http_server(port, addr=bind, registry=self.registry)


current: WorkerMetrics | None = None


def enable(port: int, bind: str = "127.0.0.1") -> WorkerMetrics:
    """Start collecting and serve ``/metrics`` on ``bind:port`` (raises ``OSError`` when the
    port is taken)."""
    global current  # noqa: PLW0603 - one worker process, one set of metrics
    metrics = WorkerMetrics()
    metrics.serve(bind, port)
    current = metrics
    return metrics


def retry(function: str) -> None:
    if current is not None:
        current.retries.labels(function).inc()
