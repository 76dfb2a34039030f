"""Queues from the SDK (sdk/queues.py) in the three modes: ``sustain.queue(...)``, the
``queue``/``key``/``priority`` options of ``Sustain.options`` and ``ctx.options``, and the
typed error of a bad queue request."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sustain import Context, QueueError
from tests.sdk.conftest import Make, unique


class Meter:
    """How many calls run at once, at most."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_calls_on_a_queue_run_within_its_limit(make: Make) -> None:
    sustain = make(max_tasks=16)
    q = unique("q")
    created = sustain.queue(q, concurrency=2)
    assert (created["name"], created["concurrency"], created["running"]) == (q, 2, 0)
    meter = Meter()

    @sustain.register
    def work(ctx: Context, n: int) -> int:
        with meter:
            time.sleep(0.1)
        return n

    on_queue = sustain.options(queue=q, key="customer-1", priority=0)
    handles = [on_queue.rpc(unique("w"), work, n) for n in range(8)]
    assert [h.result(timeout=60) for h in handles] == list(range(8))
    assert meter.peak == 2
    info = sustain.queues.get(q)
    assert (info["dispatched"], info["running"], info["waiting"]) == (8, 0, 0)
    assert [x["name"] for x in sustain.queues.list() if x["name"] == q] == [q]
    sustain.queues.delete(q)
    with pytest.raises(QueueError) as missing:
        sustain.queues.get(q)
    assert (missing.value.name, missing.value.status) == (q, 404)


def test_ctx_options_put_a_workflows_children_on_a_queue(make: Make) -> None:
    sustain = make(max_tasks=16)
    q = unique("q")
    sustain.queue(q, concurrency=1)
    meter = Meter()

    @sustain.register
    def child(ctx: Context, n: int) -> int:
        with meter:
            time.sleep(0.05)
        return n * n

    @sustain.register
    def parent(ctx: Context, count: int) -> Any:
        futures = []
        for n in range(count):
            futures.append((yield ctx.options(queue=q).begin_rpc(child, n)))
        total = 0
        for f in futures:
            total += yield f
        return total

    assert sustain.run(unique("wf"), parent, 5).result(timeout=60) == sum(n * n for n in range(5))
    assert meter.peak == 1
    assert sustain.queues.get(q)["dispatched"] == 5


def test_bad_queue_requests_raise_queue_error_before_sending(make: Make) -> None:
    sustain = make()
    with pytest.raises(QueueError, match="concurrency must be a positive integer") as bad:
        sustain.queue("payments", concurrency=0)
    assert (bad.value.name, bad.value.status) == ("payments", 400)
    with pytest.raises(QueueError, match="Invalid queue rate '100/fortnight'"):
        sustain.queue("payments", rate="100/fortnight")
    with pytest.raises(QueueError, match="need a queue"):
        sustain.options(priority=1)


def test_dedup_gives_a_second_call_with_the_same_key_the_first_ones_result(make: Make) -> None:
    sustain = make()
    q = unique("q")
    assert sustain.queue(q, concurrency=4, dedup=True)["dedup"] is True
    gate = threading.Event()
    calls: list[str] = []

    @sustain.register
    def charge(ctx: Context, order: str) -> str:
        calls.append(order)
        gate.wait(30)
        return f"charged {order} once"

    view = sustain.options(queue=q, key="order-1")
    first = view.rpc(unique("c"), charge, "order-1")
    second = view.rpc(unique("c"), charge, "order-1")  # while the first is pending
    gate.set()
    assert first.result(timeout=60) == second.result(timeout=60) == "charged order-1 once"
    assert calls == ["order-1"]
