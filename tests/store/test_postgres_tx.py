"""What ``PostgresTx`` does beyond the contract suite: one libpq pipeline per transaction,
writes queued until the next read or the commit, and the rows the transaction holds answered
from memory (sustain/store/postgres/tx.py).  Every check compares with what the database says
in a later transaction, on a real PostgreSQL.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from functools import partial

import msgspec
import psycopg
import pytest

from sustain.protocol.records import Promise, Value
from sustain.store.postgres import PostgresStore, StoreRaceError
from sustain.store.tx import Callback, TaskRow, Tx
from tests.store.postgres_db import admin_url, temp_database
from tests.store.store_builders import promise


@pytest.fixture(scope="module")
def store() -> Iterator[PostgresStore]:
    with temp_database() as url:
        s = PostgresStore(url, pool_size=2)
        try:
            yield s
        finally:
            s.close()


def test_a_value_larger_than_the_socket_buffers_round_trips(store: PostgresStore) -> None:
    """psycopg's connections are nonblocking: a statement bigger than the socket's buffers is
    sent in parts while the Tx waits for the answer."""
    big = promise("big", param=Value(headers={"h": "v"}, data="x" * 8_000_000))
    store.run(partial(_create, big))
    assert store.run(lambda tx: tx.get_promise("big")) == big


def test_callbacks_and_listeners_read_in_a_transaction_follow_its_own_writes(
    store: PostgresStore,
) -> None:
    """Random callback and listener writes on promises the transaction holds: what the
    transaction reads back after each write is what the database holds once it committed."""
    rng = random.Random(7)
    ids = [f"cb-{i}" for i in range(3)]
    kinds = ("add", "mark", "ready", "of", "one", "listen")
    for id in ids:
        store.run(partial(_create, promise(id)))
    for round in range(150):
        steps = [
            (rng.choice(kinds), rng.choice(ids), rng.choice(ids), rng.random() < 0.5)
            for _ in range(rng.randint(1, 8))
        ]
        held = rng.sample(ids, rng.randint(1, len(ids)))
        address = f"poll://uni@g/{round}"
        seen, taken = store.run(partial(_callback_writes, ids, held, steps, address))
        after = store.run(lambda tx: tx.all_callbacks())
        for id in ids:
            assert seen[id] == [c for c in after if c.awaited == id], (round, steps)
        listeners = store.run(lambda tx: tx.all_listeners())
        assert all(item.promise_id != held[0] for item in listeners)
        assert taken == sorted(set(taken))
        if ("listen", held[0]) in {(k, a) for k, a, _, _ in steps}:
            assert address in taken


Step = tuple[str, str, str, bool]


def _create(p: Promise, tx: Tx) -> None:
    if tx.get_promise(p.id) is None:
        tx.insert_promise(p)


def _callback_writes(
    ids: list[str], held: list[str], steps: list[Step], address: str, tx: Tx
) -> tuple[dict[str, list[Callback]], list[str]]:
    for id in held:
        tx.get_promise(id)  # locks the promise (and reads what hangs on it)
    for kind, a, b, flag in steps:
        if kind == "add":
            tx.add_callback(a, b, flag)
        elif kind == "mark":
            tx.mark_ready(a)
        elif kind == "ready":
            tx.delete_ready(b)
        elif kind == "of":
            tx.delete_callbacks_of(b)
        elif kind == "one":
            tx.delete_callback(a, b)
        else:
            tx.add_listener(a, address)
    taken = tx.take_listeners(held[0])
    return {id: tx.callbacks_on(id) for id in ids}, taken


def test_reads_after_writes_in_one_transaction_see_them(store: PostgresStore) -> None:
    def op(tx: Tx) -> tuple[Promise | None, Promise | None, TaskRow | None, int]:
        tx.insert_promise(promise("ryw"))
        first = tx.get_promise("ryw")
        settled = msgspec.structs.replace(
            promise("ryw"), state="resolved", value=Value(data="v"), settledAt=5
        )
        tx.update_promise(settled)
        task = TaskRow("ryw", "pending", 0, 0, 99)
        tx.put_task(task)
        return first, tx.get_promise("ryw"), tx.get_task("ryw"), len(tx.all_promises())

    first, second, task, count = store.run(op)
    assert first == promise("ryw")
    assert second == store.run(lambda tx: tx.get_promise("ryw"))
    assert second is not None and second.state == "resolved"
    assert task == store.run(lambda tx: tx.get_task("ryw")) == TaskRow("ryw", "pending", 0, 0, 99)
    assert count >= 1  # the cursor's statements run after the queued writes


def test_a_queued_write_that_fails_fails_the_whole_operation(store: PostgresStore) -> None:
    """An insert's unique violation arrives with the next trip (here the commit): the
    operation is rolled back whole, rerun, and answered 503 once every attempt lost."""
    store.run(lambda tx: tx.insert_promise(promise("dup")))
    once = PostgresStore(store.url, pool_size=1, attempts=1)
    try:

        def op(tx: Tx) -> None:
            tx.insert_promise(promise("dup-partner"))
            tx.insert_promise(promise("dup"))

        with pytest.raises(StoreRaceError):
            once.run(op)
        assert once.run(lambda tx: tx.get_promise("dup-partner")) is None
        # The connection is clean again: the next operation works.
        once.run(lambda tx: tx.insert_promise(promise("dup-after")))
        assert store.run(lambda tx: tx.get_promise("dup-after")) == promise("dup-after")
    finally:
        once.close()


def test_a_connection_killed_between_operations_is_replaced_and_the_read_rerun() -> None:
    with temp_database() as url:
        store = PostgresStore(url, pool_size=1)
        try:
            store.run(lambda tx: tx.insert_promise(promise("k")))
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(admin_url(), autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND application_name = 'sustain'",
                    (name,),
                )

            def op(tx: Tx) -> object:
                found = tx.get_promise("k")
                tx.insert_promise(promise("k2"))
                return found

            assert store.run(op) == promise("k")
            assert store.run(lambda tx: tx.get_promise("k2")) == promise("k2")
        finally:
            store.close()
