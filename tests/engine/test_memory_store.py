"""``MemoryStore``: every write is undone when the operation raises."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from msgspec.structs import replace

from sustain.protocol.records import Promise, Schedule, Value
from sustain.store.memory import MemoryStore
from sustain.store.tx import LEASE, Page, TaskRow, Tx


def promise(id: str, **tags: str) -> Promise:
    return Promise(id, "pending", Value(), Value(), dict(tags), 10_000, 0)


def schedule(id: str) -> Schedule:
    return Schedule(
        id, "* * * * *", "{{.id}}", 1, Value(), {"resonate:target": "poll://any@g"}, 0, 60_000
    )


def view(tx: Tx) -> dict[str, Any]:
    return {
        "promises": tx.all_promises(),
        "tasks": tx.all_tasks(),
        "callbacks": tx.all_callbacks(),
        "listeners": tx.all_listeners(),
        "executes": tx.all_executes(),
        "unblocks": tx.all_unblocks(),
        "schedules": tx.search_schedules({}, Page(100)),
        "ready": tx.count_ready("a"),
        "deadline": tx.next_deadline(),
    }


def seed(tx: Tx) -> None:
    for id in ("a", "a.1", "a.2", "b"):
        tx.insert_promise(promise(id, **{"resonate:target": "poll://any@g"}))
    tx.put_task(TaskRow("a", "pending", 0, 0, 5_000))
    tx.add_callback("a.1", "a", False)
    tx.add_callback("a.2", "a", True)
    tx.add_listener("a.1", "poll://any@x")
    tx.put_execute("a", 0, "poll://any@g")
    tx.put_unblock("b", "poll://any@y")
    tx.put_schedule(schedule("s"))


class Boom(Exception):
    pass


def mutate_everything(tx: Tx) -> None:
    tx.insert_promise(promise("c"))
    tx.update_promise(replace(promise("a"), state="resolved", settledAt=1))
    tx.put_task(TaskRow("a", "acquired", 1, LEASE, 9_000, "w", 100))
    tx.put_task(TaskRow("b", "pending", 0))
    tx.add_callback("a.1", "a", True)
    tx.add_callback("b", "a", False)
    tx.mark_ready("a.1")
    tx.delete_ready("a")
    tx.delete_callbacks_of("a")
    tx.add_callback("a.2", "b", False)
    tx.delete_callback("a.2", "b")
    tx.add_listener("a.2", "poll://any@z")
    assert tx.take_listeners("a.1") == ["poll://any@x"]
    tx.put_execute("a", 3, "poll://any@h")
    tx.put_execute("b", 0, "poll://any@h")
    tx.put_unblock("a", "poll://any@q")
    tx.claim_outbox(1)
    tx.put_schedule(schedule("t"))
    assert tx.delete_schedule("s")
    tx.reset()
    tx.insert_promise(promise("z"))
    raise Boom


def test_rollback_restores_every_table() -> None:
    store = MemoryStore()
    store.run(seed)
    before = store.run(view)
    with pytest.raises(Boom):
        store.run(mutate_everything)
    assert store.run(view) == before
    assert before["ready"] == 1 and before["deadline"] == 5_000


def test_committed_writes_stay() -> None:
    store = MemoryStore()
    store.run(seed)
    executes, unblocks = store.run(lambda tx: tx.claim_outbox(10))
    assert [e.task_id for e in executes] == ["a"]
    assert [(p.id, a) for p, a in unblocks] == [("b", "poll://any@y")]
    assert not store.run(lambda tx: tx.has_outbox())


async def test_run_async() -> None:
    store = MemoryStore()
    await store.run_async(seed)
    assert len(await store.run_async(lambda tx: tx.all_promises())) == 4
    assert store.ping()
    store.close()


def test_threads_are_serialised() -> None:
    store = MemoryStore()

    def add(n: int) -> None:
        for i in range(200):
            store.run(lambda tx, i=i: tx.insert_promise(promise(f"{n}-{i}")))  # type: ignore[misc]

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.run(lambda tx: tx.all_promises())) == 800


def test_timer_index_survives_rollback_of_a_moving_write() -> None:
    store = MemoryStore()
    store.run(lambda tx: tx.put_task(TaskRow("t", "pending", 0, 0, 5_000)))

    def move_then_fail(tx: Tx) -> None:
        tx.put_task(TaskRow("t", "pending", 0, 0, 9_000))
        assert tx.next_deadline() == 9_000  # drops the stale 5_000 hint
        assert tx.due_tasks(8_000) == []
        raise Boom

    with pytest.raises(Boom):
        store.run(move_then_fail)
    assert store.run(lambda tx: tx.next_deadline()) == 5_000
    assert [t.id for t in store.run(lambda tx: tx.due_tasks(5_000))] == ["t"]


def test_due_queries_follow_the_rows() -> None:
    store = MemoryStore()
    target = {"resonate:target": "poll://any@g"}

    def setup(tx: Tx) -> None:
        for i, at in enumerate((300, 100, 200)):
            tx.insert_promise(replace(promise(f"p{i}", **target), timeoutAt=at))
        tx.insert_promise(replace(promise("plain"), timeoutAt=50))
        tx.put_schedule(replace(schedule("s"), nextRunAt=150))

    store.run(setup)
    assert [p.id for p in store.run(lambda tx: tx.due_promises(250))] == ["p1", "p2"]
    assert store.run(lambda tx: tx.next_deadline()) == 100
    store.run(lambda tx: tx.update_promise(replace(promise("p1", **target), state="resolved")))
    assert [p.id for p in store.run(lambda tx: tx.due_promises(250))] == ["p2"]
    assert store.run(lambda tx: tx.next_deadline()) == 150
    assert [s.id for s in store.run(lambda tx: tx.due_schedules(150))] == ["s"]
    store.run(lambda tx: tx.delete_schedule("s"))
    assert store.run(lambda tx: tx.due_schedules(10_000)) == []
    assert store.run(lambda tx: tx.next_deadline()) == 200
