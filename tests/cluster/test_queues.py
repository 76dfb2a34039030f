"""Queues on two ``sustain serve --postgres`` replicas of one database (issue 20): jobs are
created through both, a worker is attached to each, and the limits hold across the cluster
(every dispatch reads the queue's row FOR UPDATE, store/sql/queues.py)."""

from __future__ import annotations

from pathlib import Path

from tests.cluster.conftest import Replicas
from tests.queues.conftest import Workers
from tests.queues.journal import events, max_at_once, put_job, wait_settled
from tests.sdk.conftest import unique


def test_limits_hold_globally_across_two_replicas(cluster: Replicas, tmp_path: Path) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    q = unique("q")
    a.ok("sustain.queue.create", {"name": q, "concurrency": 3, "per_key_concurrency": 1})
    workers = Workers(tmp_path)
    try:
        workers.start("on-a", a)
        workers.start("on-b", b)
        ids = []
        for i in range(24):
            id = unique("job")
            put_job(a if i % 2 else b, workers.group, id, q, key=f"k{i % 5}", hold=0.25)
            ids.append(id)
        wait_settled(a, ids, patience=120)
    finally:
        workers.close()
    evs = events(workers.log)
    assert sum(e.kind == "start" for e in evs) == 24
    assert max_at_once(evs) == {"": 3}
    assert set(max_at_once(evs, by=lambda e: e.key).values()) == {1}
    assert len({e.pid for e in evs}) == 2
    for replica in (a, b):
        info = replica.ok("sustain.queue.get", {"name": q})["queue"]
        assert (info["running"], info["waiting"], info["dispatched"]) == (0, 0, 24)
