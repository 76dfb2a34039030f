"""Queues over a real server and real worker processes (issue 20): the limits as the workers
see them.  Each job logs its start and end (queue_app.py); the tests read the log."""

from __future__ import annotations

import signal
import time

from tests.queues.conftest import Workers
from tests.queues.journal import events, max_at_once, put_job, wait_settled
from tests.sdk.conftest import unique
from tests.servers import ServerProcess


def test_concurrency_and_per_key_limits_hold_across_two_workers(
    server: ServerProcess, workers: Workers
) -> None:
    q = unique("q")
    server.ok("sustain.queue.create", {"name": q, "concurrency": 3, "per_key_concurrency": 1})
    workers.start("one", server)
    workers.start("two", server)
    ids = []
    for i in range(16):
        id = unique("job")
        put_job(server, workers.group, id, q, key=f"k{i % 4}", hold=0.3)
        ids.append(id)
    wait_settled(server, ids)
    evs = events(workers.log)
    assert sum(e.kind == "start" for e in evs) == 16
    assert max_at_once(evs) == {"": 3}  # the limit, and reached
    per_key = max_at_once(evs, by=lambda e: e.key)
    assert set(per_key.values()) == {1}, per_key
    assert len({e.pid for e in evs}) == 2  # both workers took part
    info = server.ok("sustain.queue.get", {"name": q})["queue"]
    assert (info["running"], info["waiting"], info["dispatched"]) == (0, 0, 16)
    assert info["waitedMs"] > 0  # 16 jobs of 0.3 s through 3 slots: most waited
    metrics = server.client.get("/metrics").text
    assert f'sustain_queue_dispatched_total{{queue="{q}"}} 16.0' in metrics
    assert f'sustain_queue_running{{queue="{q}"}} 0.0' in metrics
    assert f'sustain_queue_waiting{{queue="{q}"}} 0.0' in metrics
    waited = f'sustain_queue_wait_seconds_total{{queue="{q}"}} '
    assert float(metrics.split(waited)[1].split()[0]) == info["waitedMs"] / 1000


def test_dispatch_order_follows_priority_then_fifo(server: ServerProcess, workers: Workers) -> None:
    q = unique("q")
    server.ok("sustain.queue.create", {"name": q, "concurrency": 1})
    workers.start("one", server)
    blocker = unique("blocker")
    put_job(server, workers.group, blocker, q, hold=1.0)  # holds the slot while we fill up
    wanted = [("c1", 3), ("a1", 0), ("b1", 1), ("a2", 0), ("c2", 3), ("b2", 1)]
    ids = {name: unique(name) for name, _ in wanted}
    for name, priority in wanted:
        put_job(server, workers.group, ids[name], q, priority=priority, hold=0.05)
    waiting = server.ok("sustain.queue.get", {"name": q})["queue"]["waitingByPriority"]
    assert waiting == {"0": 2, "1": 2, "3": 2}
    wait_settled(server, [blocker, *ids.values()])
    names = {v: k for k, v in ids.items()}
    started = [names[e.name] for e in events(workers.log) if e.kind == "start" and e.name in names]
    assert started == ["a1", "a2", "b1", "b2", "c1", "c2"]


def test_rate_spreads_dispatches_over_time(server: ServerProcess, workers: Workers) -> None:
    q = unique("q")
    server.ok("sustain.queue.create", {"name": q, "rate": "10/s"})  # one every 100 ms
    workers.start("one", server)
    ids = [unique("job") for _ in range(12)]
    for id in ids:
        put_job(server, workers.group, id, q, hold=0.0)
    wait_settled(server, ids)
    starts = sorted(e.at for e in events(workers.log) if e.kind == "start")
    assert len(starts) == 12
    # 12 dispatches at 10/s span at least 1.1 s; delivery jitter may bunch two starts, so
    # count per window: no 0.5 s window holds more than 5 + 2 starts
    assert starts[-1] - starts[0] >= 1.0
    for i, at in enumerate(starts):
        assert sum(1 for s in starts[i:] if s < at + 0.5) <= 7, starts


def test_slots_of_a_killed_worker_come_back_after_its_lease(
    server: ServerProcess, workers: Workers
) -> None:
    q = unique("q")
    server.ok("sustain.queue.create", {"name": q, "concurrency": 2})
    doomed = workers.start("doomed", server, QUEUE_TTL="2", QUEUE_HANG="1")
    ids = [unique("job") for _ in range(4)]
    for id in ids:
        put_job(server, workers.group, id, q, hold=0.3)
    deadline = time.monotonic() + 30
    while sum(e.kind == "start" for e in events(workers.log)) < 2:
        assert time.monotonic() < deadline, workers.output("doomed")
        time.sleep(0.05)
    time.sleep(0.5)
    assert sum(e.kind == "start" for e in events(workers.log)) == 2  # the limit holds
    doomed.send_signal(signal.SIGKILL)
    doomed.wait(timeout=10)
    killed_at = time.time()
    workers.start("heir", server)
    wait_settled(server, ids)
    evs = events(workers.log)
    heir = [e for e in evs if e.pid != doomed.pid]
    assert sorted(e.name for e in heir if e.kind == "end") == sorted(ids)
    assert max_at_once(heir) == {"": 2}
    # the two held jobs waited for the lease (2 s from the last heartbeat) to lapse
    first_retake = min(e.at for e in heir if e.kind == "start")
    assert first_retake > killed_at
    info = server.ok("sustain.queue.get", {"name": q})["queue"]
    assert (info["running"], info["waiting"]) == (0, 0)
