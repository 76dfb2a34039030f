"""The queue part of the Tx contract (store/tx.py) on every store: memory, SQLite, PostgreSQL."""

from __future__ import annotations

import pytest

from sustain.store.base import Store
from sustain.store.tx import QueueEntry, QueueRow, Tx


def entry(id: str, priority: int, seq: int, key: str = "", running: bool = False) -> QueueEntry:
    return QueueEntry(id, "q", key, priority, seq, 0, "poll://any@w", 10, running)


def test_queue_rows_round_trip_and_order(store: Store) -> None:
    def write(tx: Tx) -> None:
        tx.put_queue(QueueRow("b", concurrency=2, rate="1/s", wake_at=50))
        tx.put_queue(QueueRow("a", per_key_concurrency=1, seq=7))

    store.run(write)
    assert [q.name for q in store.run(lambda tx: tx.all_queues())] == ["a", "b"]
    assert store.run(lambda tx: tx.get_queue("a")) == QueueRow("a", per_key_concurrency=1, seq=7)
    assert [q.name for q in store.run(lambda tx: tx.due_queues(50))] == ["b"]
    assert store.run(lambda tx: tx.due_queues(49)) == []
    assert store.run(lambda tx: tx.next_deadline()) == 50
    assert store.run(lambda tx: tx.delete_queue("b")) is True
    assert store.run(lambda tx: tx.delete_queue("b")) is False
    assert store.run(lambda tx: tx.get_queue("b")) is None


def test_entries_waiting_order_counts_and_delete(store: Store) -> None:
    def write(tx: Tx) -> None:
        tx.put_entry(entry("t3", 2, 3))
        tx.put_entry(entry("t1", 5, 1))
        tx.put_entry(entry("t2", 2, 2, key="k"))
        tx.put_entry(entry("r1", 0, 0, key="k", running=True))
        tx.put_entry(entry("r2", 0, 4, key="j", running=True))

    store.run(write)
    waiting = store.run(lambda tx: tx.waiting_entries("q", 10))
    assert [e.task_id for e in waiting] == ["t2", "t3", "t1"]
    assert [e.task_id for e in store.run(lambda tx: tx.waiting_entries("q", 1))] == ["t2"]
    assert store.run(lambda tx: tx.count_running("q")) == 2
    assert store.run(lambda tx: tx.count_running("q", "k")) == 1
    assert store.run(lambda tx: tx.count_running("other")) == 0
    counts = store.run(lambda tx: tx.queue_counts("q"))
    assert counts == [(False, 2, 2), (False, 5, 1), (True, 0, 2)]
    store.run(lambda tx: tx.put_entry(entry("t2", 2, 2, key="k", running=True)))
    assert store.run(lambda tx: tx.get_entry("t2")) == entry("t2", 2, 2, key="k", running=True)
    store.run(lambda tx: tx.delete_entry("t2"))
    assert store.run(lambda tx: tx.get_entry("t2")) is None
    store.run(lambda tx: tx.reset())
    assert store.run(lambda tx: tx.queue_counts("q")) == []


def test_a_failed_transaction_leaves_queues_as_they_were(store: Store) -> None:
    store.run(lambda tx: tx.put_queue(QueueRow("q", concurrency=1)))

    def fail(tx: Tx) -> None:
        tx.put_queue(QueueRow("q", concurrency=9))
        tx.put_entry(entry("t", 0, 0))
        tx.delete_queue("q")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.run(fail)
    assert store.run(lambda tx: tx.get_queue("q")) == QueueRow("q", concurrency=1)
    assert store.run(lambda tx: tx.get_entry("t")) is None
