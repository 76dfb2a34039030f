"""Per-queue Prometheus metrics (docs/queues.md): what each queue holds and has let out.

A queue's state lives in the store (the same on every replica of a cluster), so these are
not counted in process: ``Metrics.refresh`` reads every queue before the API port's
``/metrics`` answers, and this collector reports that reading.  Series, labelled ``queue``:
``sustain_queue_running``, ``sustain_queue_waiting`` (gauges), ``sustain_queue_dispatched_total``
and ``sustain_queue_wait_seconds_total`` (counters: executes let out, and their summed time
from joining the queue to being let out).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sustain.engine.queue_ops import QueueInfo


class QueueCollector:
    """A prometheus-client collector over the last reading of the queues."""

    def __init__(self) -> None:
        self.reading: list[QueueInfo] = []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (  # noqa: PLC0415 - only with metrics on
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        running = GaugeMetricFamily(
            "sustain_queue_running", "Tasks holding a slot", labels=["queue"]
        )
        waiting = GaugeMetricFamily("sustain_queue_waiting", "Tasks waiting", labels=["queue"])
        dispatched = CounterMetricFamily(
            "sustain_queue_dispatched", "Executes the queue let out", labels=["queue"]
        )
        waited = CounterMetricFamily(
            "sustain_queue_wait_seconds", "Time waited by the tasks let out", labels=["queue"]
        )
        for q in self.reading:
            running.add_metric([q.name], q.running)
            waiting.add_metric([q.name], q.waiting)
            dispatched.add_metric([q.name], q.dispatched)
            waited.add_metric([q.name], q.waitedMs / 1000)
        yield from (running, waiting, dispatched, waited)
