"""SqliteTx's row cache and row counts (store/sqlite/tx.py) against the database they stand for.

Every read the cache answers must equal what the database holds: after writes, after a
failed op rolled back alone in a batch or with its whole transaction, after a reset, past
the cache's size and for rows too large to cache.  Each test checks through the cached
methods and through the uncached whole-table views, on a real SQLite file.
"""

from __future__ import annotations

import pytest

from sustain.protocol.records import Value
from sustain.store.sqlite import SqliteStore
from sustain.store.sqlite import tx as sqlite_tx
from sustain.store.tx import LEASE, Callback, TaskRow, Tx
from tests.store.store_builders import TARGET, promise
from tests.store.test_group_commit import Boom, hold_writer


def task(id: str, state: str = "pending", version: int = 0) -> TaskRow:
    return TaskRow(id, state, version, LEASE, 5_000, "pid", 1_000)  # type: ignore[arg-type]


def test_reads_follow_the_writes_of_earlier_ops(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        assert store.run(lambda tx: tx.get_promise("p")) is None  # cached as absent
        store.run(lambda tx: tx.insert_promise(promise("p", tags={TARGET: "poll://a"})))
        store.run(lambda tx: tx.get_task("p"))  # cached as absent
        store.run(lambda tx: tx.put_task(task("p")))
        settled = promise("p", tags={TARGET: "poll://a"})
        settled.state = "resolved"
        settled.value = Value(headers={"h": "1"}, data="ZA==")
        settled.settledAt = 7
        store.run(lambda tx: tx.update_promise(settled))
        store.run(lambda tx: tx.put_task(task("p", "fulfilled", 3)))

        def both(tx: Tx) -> tuple[object, object, object, object]:
            return tx.get_promise("p"), tx.get_task("p"), tx.all_promises(), tx.all_tasks()

        cached_p, cached_t, stored_p, stored_t = store.run(both)
        assert cached_p == settled and stored_p == [settled]
        assert cached_t == task("p", "fulfilled", 3) and stored_t == [cached_t]


@pytest.mark.parametrize("batched", [True, False])
def test_a_failed_op_leaves_no_cached_row_behind(db_path: str, batched: bool) -> None:
    """Rolled back to its savepoint (in a batch) or with its whole transaction (alone)."""
    with SqliteStore(db_path) as store:
        store.run(lambda tx: tx.insert_promise(promise("kept")))
        # Know the counts and cache the absences before the failing op.
        store.run(lambda tx: (tx.get_promise("gone"), tx.get_task("gone")))
        store.run(lambda tx: (tx.callbacks_on("kept"), tx.take_listeners("kept")))

        def failing(tx: Tx) -> None:
            tx.insert_promise(promise("gone"))
            tx.put_task(task("gone"))
            tx.put_task(task("kept", "acquired", 1))
            tx.add_callback("kept", "gone", False)
            tx.add_listener("kept", "poll://x")
            raise Boom("undone")

        if batched:
            release, blocker = hold_writer(store)
            futures = [store.submit(failing), store.submit(lambda tx: tx.get_promise("kept"))]
            release.set()
            blocker.join()
            with pytest.raises(Boom):
                futures[0].result()
            assert futures[1].result() == promise("kept")
            assert store.stats.max_batch >= 2
        else:
            with pytest.raises(Boom):
                store.run(failing)

        def read(tx: Tx) -> tuple[object, ...]:
            return (
                tx.get_promise("gone"),
                tx.get_task("gone"),
                tx.get_task("kept"),
                tx.callbacks_on("kept"),
                tx.take_listeners("kept"),
                tx.count_ready("gone"),
            )

        assert store.run(read) == (None, None, None, [], [], 0)


def test_counts_follow_adds_and_deletes(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        assert store.run(lambda tx: tx.callbacks_on("a")) == []  # counts: now known, 0
        store.run(lambda tx: tx.add_callback("a", "w1", False))
        store.run(lambda tx: tx.add_callback("a", "w1", False))  # exists: no second row
        store.run(lambda tx: tx.add_callback("b", "w1", False))
        store.run(lambda tx: tx.add_callback("a", "w2", True))
        store.run(lambda tx: tx.add_callback("a", "w1", True))  # exists: raised to ready
        assert store.run(lambda tx: tx.callbacks_on("a")) == [
            Callback("a", "w1", True),
            Callback("a", "w2", True),
        ]
        assert store.run(lambda tx: tx.count_ready("w1")) == 1
        store.run(lambda tx: tx.delete_callback("a", "nobody"))  # deletes nothing
        store.run(lambda tx: tx.delete_ready("w1"))  # ("a", "w1")
        store.run(lambda tx: tx.delete_callbacks_of("w2"))
        # One row left: a count gone wrong would hide it.
        assert store.run(lambda tx: tx.callbacks_on("b")) == [Callback("b", "w1", False)]
        store.run(lambda tx: tx.mark_ready("b"))
        assert store.run(lambda tx: tx.count_ready("w1")) == 1
        store.run(lambda tx: tx.delete_callbacks_of("w1"))
        assert store.run(lambda tx: tx.all_callbacks()) == []
        store.run(lambda tx: tx.add_callback("c", "w3", False))  # from a known 0
        assert store.run(lambda tx: tx.callbacks_on("c")) == [Callback("c", "w3", False)]

        store.run(lambda tx: tx.add_listener("p", "x"))
        store.run(lambda tx: tx.add_listener("p", "x"))
        store.run(lambda tx: tx.add_listener("q", "y"))
        assert store.run(lambda tx: tx.take_listeners("p")) == ["x"]
        assert store.run(lambda tx: tx.take_listeners("p")) == []
        assert store.run(lambda tx: tx.take_listeners("q")) == ["y"]
        store.run(lambda tx: tx.add_listener("r", "z"))
        assert store.run(lambda tx: tx.take_listeners("r")) == ["z"]


def test_counts_start_from_the_rows_on_disk(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        store.run(lambda tx: tx.add_callback("a", "w", False))
        store.run(lambda tx: tx.add_listener("a", "x"))
    with SqliteStore(db_path) as store:  # a fresh Tx: counts unknown until counted
        assert store.run(lambda tx: tx.callbacks_on("a")) == [Callback("a", "w", False)]
        assert store.run(lambda tx: tx.take_listeners("a")) == ["x"]


def test_reset_empties_cache_and_counts(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        store.run(lambda tx: tx.insert_promise(promise("p")))
        store.run(lambda tx: tx.put_task(task("p")))
        store.run(lambda tx: tx.add_callback("p", "w", False))
        store.run(lambda tx: tx.add_listener("p", "x"))
        store.run(lambda tx: tx.reset())
        assert store.run(
            lambda tx: (tx.get_promise("p"), tx.get_task("p"), tx.callbacks_on("p"))
        ) == (None, None, [])
        store.run(lambda tx: tx.add_listener("p", "y"))
        assert store.run(lambda tx: tx.take_listeners("p")) == ["y"]


def test_large_rows_and_a_full_cache_read_back_whole(
    db_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_tx, "_CACHE_ROWS", 4)
    big = "x" * (sqlite_tx._CACHE_DATA + 1)
    with SqliteStore(db_path) as store:
        for i in range(10):  # more rows than the cache holds: it starts over, twice
            store.run(lambda tx, i=i: tx.insert_promise(promise(f"p{i}")))
            store.run(lambda tx, i=i: tx.put_task(task(f"p{i}", version=i)))
        store.run(lambda tx: tx.insert_promise(promise("big", param=Value(data=big))))
        settled = promise("big", param=Value(data=big))
        settled.state = "resolved"
        settled.value = Value(data=big)
        settled.settledAt = 1
        store.run(lambda tx: tx.update_promise(settled))
        small = promise("small")
        store.run(lambda tx: tx.insert_promise(small))
        small.state = "rejected"
        small.value = Value(data=big)  # a settle that makes a cached row large
        small.settledAt = 2
        store.run(lambda tx: tx.update_promise(small))

        def read(tx: Tx) -> list[object]:
            return [tx.get_promise(f"p{i}") for i in range(10)] + [
                tx.get_task(f"p{i}") for i in range(10)
            ]

        assert store.run(read) == [promise(f"p{i}") for i in range(10)] + [
            task(f"p{i}", version=i) for i in range(10)
        ]
        assert store.run(lambda tx: tx.get_promise("big")) == settled
        assert store.run(lambda tx: tx.get_promise("small")) == small


def test_due_promises_prefetch_the_rows_the_chain_reads(db_path: str) -> None:
    with SqliteStore(db_path) as store:

        def setup(tx: Tx) -> None:
            for id in ("s1", "s2", "w"):
                tx.insert_promise(promise(id, tags={TARGET: "poll://a"}, timeout_at=100))
            tx.put_task(task("s1"))  # s2 has a target but (in this test) no task
            tx.put_task(task("w", "suspended"))
            tx.add_callback("s1", "w", False)

        store.run(setup)
    with SqliteStore(db_path) as store:  # a cold cache, as after a restart

        def tick(tx: Tx) -> tuple[object, ...]:
            due = [p.id for p in tx.due_promises(100)]
            return due, tx.get_task("s1"), tx.get_task("s2"), tx.get_promise("w"), tx.get_task("w")

        assert store.run(tick) == (
            ["s1", "s2", "w"],
            task("s1"),
            None,
            promise("w", tags={TARGET: "poll://a"}, timeout_at=100),
            task("w", "suspended"),
        )


def test_prefetched_callbacks_follow_the_writes_after_the_prefetch(db_path: str) -> None:
    """What due_promises left for callbacks_on / delete_callbacks_of is dropped by each write
    that makes it stale."""
    with SqliteStore(db_path) as store:

        def setup(tx: Tx) -> None:
            for id in ("s1", "s2", "s3"):
                tx.insert_promise(promise(id, tags={TARGET: "poll://a"}, timeout_at=100))
            tx.add_callback("s1", "w", False)
            tx.add_callback("s2", "w", True)
            tx.add_callback("x", "s3", False)  # s3 awaits x

        store.run(setup)

        def tick(tx: Tx) -> list[object]:
            tx.due_promises(100)
            seen: list[object] = []
            tx.add_callback("s1", "v", False)  # a new callback on a prefetched promise
            seen.append(tx.callbacks_on("s1"))
            tx.delete_callbacks_of("s3")  # s3 awaits something: really deleted
            seen.append(tx.all_callbacks())
            tx.due_promises(100)
            tx.delete_callbacks_of("w")  # deletes rows the prefetch listed
            seen.append(tx.callbacks_on("s1"))
            seen.append(tx.callbacks_on("s2"))
            tx.due_promises(100)
            tx.add_callback("s3", "u", False)
            tx.add_callback("y", "s2", False)  # s2 awaited nothing at the prefetch; now it does
            tx.delete_callbacks_of("s2")
            tx.mark_ready("s3")
            seen.append(tx.callbacks_on("s3"))
            seen.append(tx.all_callbacks())
            return seen

        assert store.run(tick) == [
            [Callback("s1", "v", False), Callback("s1", "w", False)],
            [Callback("s1", "v", False), Callback("s1", "w", False), Callback("s2", "w", True)],
            [Callback("s1", "v", False)],
            [],
            [Callback("s3", "u", True)],
            [Callback("s3", "u", True), Callback("s1", "v", False)],
        ]
