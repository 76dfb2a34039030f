"""Group commit: concurrent operations share commits; a failing op in a batch is alone."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest

from sustain.store.errors import CommitError
from sustain.store.sqlite import SqliteStore
from sustain.store.sqlite.sync import WalSyncer
from sustain.store.tx import Tx
from tests.store.store_builders import promise


class Boom(Exception):
    pass


def hold_writer(store: SqliteStore) -> tuple[threading.Event, threading.Thread]:
    """Occupy the writer with an op that waits, so the next ops queue up into one batch."""
    release = threading.Event()
    entered = threading.Event()

    def blocker(tx: Tx) -> None:
        entered.set()
        release.wait(60)

    thread = threading.Thread(target=store.run, args=(blocker,))
    thread.start()
    assert entered.wait(60)
    return release, thread


def wait_queued(store: SqliteStore, n: int) -> None:
    # A condition, not a timing: each caller thread has enqueued its op.
    done = threading.Event()
    while store.queued() < n:
        done.wait(0.005)


def test_concurrent_runs_complete_with_fewer_commits_than_ops(db_path: str) -> None:
    store = SqliteStore(db_path)
    try:
        n = 64
        release, blocker = hold_writer(store)
        before_ops, before_commits = store.stats.ops, store.stats.commits
        results: dict[int, str] = {}

        def create(i: int) -> None:
            def op(tx: Tx) -> str:
                tx.insert_promise(promise(f"p{i:03}"))
                return f"p{i:03}"

            results[i] = store.run(op)

        callers = [threading.Thread(target=create, args=(i,)) for i in range(n)]
        for t in callers:
            t.start()
        wait_queued(store, n)
        release.set()
        for t in callers:
            t.join()
        blocker.join()
        assert results == {i: f"p{i:03}" for i in range(n)}
        ops = store.stats.ops - before_ops
        commits = store.stats.commits - before_commits
        assert ops == n + 1
        assert commits <= 2 < ops  # the blocker's batch, then one batch for all 64
        assert store.stats.max_batch >= n
        assert store.run(lambda tx: len(tx.all_promises())) == n
    finally:
        store.close()
    with SqliteStore(db_path) as reopened:
        assert reopened.run(lambda tx: len(tx.all_promises())) == n


def test_a_failing_op_inside_a_batch_rolls_back_alone(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        release, blocker = hold_writer(store)
        futures = []
        for i in range(10):

            def op(tx: Tx, i: int = i) -> int:
                tx.insert_promise(promise(f"p{i}"))
                tx.add_listener(f"p{i}", "a")
                if i == 4:
                    raise Boom("four")
                return i

            futures.append(store.submit(op))
        release.set()
        blocker.join()
        for i, fut in enumerate(futures):
            if i == 4:
                with pytest.raises(Boom, match="four"):
                    fut.result()
            else:
                assert fut.result() == i
        ids = store.run(lambda tx: [p.id for p in tx.all_promises()])
        assert ids == [f"p{i}" for i in range(10) if i != 4]
        assert store.run(lambda tx: len(tx.all_listeners())) == 9
        assert store.stats.max_batch >= 10


def test_close_runs_queued_ops_first(db_path: str) -> None:
    store = SqliteStore(db_path)
    release, blocker = hold_writer(store)
    futures = [store.submit(lambda tx, i=i: tx.insert_promise(promise(f"q{i}"))) for i in range(20)]
    closer = threading.Thread(target=store.close)
    closer.start()
    release.set()
    closer.join()
    blocker.join()
    assert all(f.done() and f.exception() is None for f in futures)
    with SqliteStore(db_path) as reopened:
        assert reopened.run(lambda tx: len(tx.all_promises())) == 20


def test_full_syncs_the_wal_before_answering_and_normal_does_not(tmp_path: Path) -> None:
    with SqliteStore(str(tmp_path / "full.db")) as full:
        for i in range(5):
            full.run(lambda tx, i=i: tx.insert_promise(promise(f"p{i}")))
        # Each sequential op was answered only after a sync that followed its commit.
        assert full.syncs >= 5
        assert full.syncs <= full.stats.commits
    with SqliteStore(str(tmp_path / "normal.db"), synchronous="NORMAL") as normal:
        normal.run(lambda tx: tx.insert_promise(promise("p")))
        assert normal.syncs == 0


async def test_a_volatile_op_is_answered_at_commit_and_the_next_sync_covers_it(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "sustain.db")
    with SqliteStore(path) as store:
        await store.run_async(lambda tx: tx.insert_promise(promise("first")))
        synced = store.syncs
        for i in range(5):
            await store.run_async(lambda tx, i=i: tx.insert_promise(promise(f"v{i}")), False)
        assert store.syncs == synced  # answered without waiting for (or asking for) a sync
        await store.run_async(lambda tx: tx.insert_promise(promise("last")))
        assert store.syncs == synced + 1  # one sync, after all six commits
    with SqliteStore(path) as reopened:
        found = reopened.run(lambda tx: sorted(p.id for p in tx.all_promises()))
    assert found == ["first", "last", "v0", "v1", "v2", "v3", "v4"]


def test_a_failed_wal_sync_fails_the_batch_and_every_later_op(tmp_path: Path) -> None:
    path = str(tmp_path / "sustain.db")
    with SqliteStore(path) as store:
        # Someone removed the WAL under the store: its sync cannot be trusted any more.
        os.unlink(path + "-wal")
        with pytest.raises(CommitError):
            store.run(lambda tx: tx.insert_promise(promise("p")))
        with pytest.raises(CommitError):
            store.run(lambda tx: tx.get_promise("p"))
        assert store.ping() is False


def test_wal_syncer_answers_in_commit_order_after_syncing(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    with SqliteStore(path) as store:
        store.run(lambda tx: tx.insert_promise(promise("p")))  # the WAL exists now
        syncer = WalSyncer(path)
        futures: list[Future[int]] = []
        boom = Boom("own error")
        for _ in range(3):
            fut: Future[int] = Future()
            fut.set_running_or_notify_cancel()
            futures.append(fut)
        syncer.committed([(futures[0], True, 0), (futures[1], False, boom)])
        syncer.committed([(futures[2], True, 2)])
        syncer.stop()
        assert futures[0].result() == 0
        assert futures[1].exception() is boom
        assert futures[2].result() == 2
        assert syncer.syncs >= 1
        assert syncer.failure is None


def test_an_op_that_ends_the_transaction_fails_its_batch_not_the_next(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        release, blocker = hold_writer(store)
        before = store.submit(lambda tx: tx.insert_promise(promise("before")))

        def rogue(tx: Tx) -> None:
            # Stands for an op that swallowed an error after which SQLite rolled back the
            # whole transaction (disk full): reaching into the connection is the only way
            # to end a transaction from inside an op.
            tx._conn.execute("ROLLBACK")  # type: ignore[attr-defined]

        lost = store.submit(rogue)
        after = store.submit(lambda tx: tx.insert_promise(promise("after")))
        release.set()
        blocker.join()
        for fut in (before, lost):
            with pytest.raises(CommitError, match="transaction aborted"):
                fut.result()
        after.result()
        assert store.run(lambda tx: [p.id for p in tx.all_promises()]) == ["after"]


async def wait_queued_async(store: SqliteStore, n: int) -> None:
    await asyncio.to_thread(wait_queued, store, n)


async def test_async_callers_share_a_batch_and_get_their_own_answers(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        release, blocker = hold_writer(store)
        commits = store.stats.commits

        def op(i: int) -> Callable[[Tx], int]:
            def run(tx: Tx) -> int:
                tx.insert_promise(promise(f"a{i:02}"))
                if i == 7:
                    raise Boom("seven")
                return i

            return run

        tasks = [asyncio.ensure_future(store.run_async(op(i))) for i in range(40)]
        await wait_queued_async(store, 40)
        release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.to_thread(blocker.join)
        assert [r for i, r in enumerate(results) if i != 7] == [i for i in range(40) if i != 7]
        assert isinstance(results[7], Boom)
        assert store.stats.commits - commits <= 2
        ids = await store.run_async(lambda tx: [p.id for p in tx.all_promises()])
        assert ids == [f"a{i:02}" for i in range(40) if i != 7]


async def test_async_caller_cancelled_while_queued_never_runs(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        release, blocker = hold_writer(store)
        task = asyncio.ensure_future(
            store.run_async(lambda tx: tx.insert_promise(promise("never")))
        )
        kept = asyncio.ensure_future(store.run_async(lambda tx: tx.insert_promise(promise("kept"))))
        await wait_queued_async(store, 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        release.set()
        await kept
        await asyncio.to_thread(blocker.join)
        ids = await store.run_async(lambda tx: [p.id for p in tx.all_promises()])
        assert ids == ["kept"]


def test_callers_on_several_event_loops_are_answered_on_their_own(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        release, blocker = hold_writer(store)
        answers: dict[int, list[str]] = {}

        def loop_thread(k: int) -> None:
            async def main() -> list[str]:
                ops = [
                    store.run_async(
                        lambda tx, i=i: (tx.insert_promise(promise(f"{k}.{i}")), f"{k}.{i}")[1]
                    )
                    for i in range(5)
                ]
                return list(await asyncio.gather(*ops))

            answers[k] = asyncio.run(main())

        loops = [threading.Thread(target=loop_thread, args=(k,)) for k in range(3)]
        for t in loops:
            t.start()
        wait_queued(store, 15)
        release.set()
        for t in loops:
            t.join()
        blocker.join()
        assert answers == {k: [f"{k}.{i}" for i in range(5)] for k in range(3)}


def test_an_op_cannot_wait_for_its_own_store(db_path: str) -> None:
    with SqliteStore(db_path) as store:

        def nested(tx: Tx) -> None:
            store.run(lambda inner: inner.get_promise("p"))

        with pytest.raises(RuntimeError, match="cannot run another operation"):
            store.run(nested)
        assert store.ping() is True
