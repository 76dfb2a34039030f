"""Races on PostgreSQL: many clients, each with its own store (its own connection), on the same
promises and tasks, released together by a barrier so their transactions really overlap.

Each client runs ``Engine.apply`` through its ``PostgresStore`` exactly as a server replica
does, and retries an operation answered 503 (``StoreRaceError``/``StoreUnavailableError``)
as Sustain's SDK does.  Any other exception fails the test (it would be a 500).  After each
race the database is read back and the invariants are checked:

* settle vs timeout: one transition (resolved by exactly one settler, or timed out), every
  settler sees that result, the awaiter is resumed (its callback is not lost);
* acquire vs acquire: exactly one winner, the version moves once, a stale version is fenced;
* suspend vs settle of the awaited: never a suspended task on a settled promise;
* create vs create of one id: one promise, one task, one execute; one task.create winner.

Also: replicas starting together migrate once; connections killed by the database are
replaced without an error; a volatile acknowledgement (``durable=False``) still commits.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import psycopg
import pytest

from sustain.engine import Engine, EngineConfig
from sustain.store.errors import CommitError
from sustain.store.postgres import PostgresStore, StoreRaceError
from sustain.store.tx import Tx
from tests.store.postgres_db import admin_url, temp_database
from tests.store.store_builders import promise as _promise

CLIENTS = 8
T0 = 1_700_000_000_000
G = "poll://any@g"
R = 30_000


class Client:
    """One replica's view: its own store (one connection) and engine."""

    def __init__(self, url: str) -> None:
        self.store = PostgresStore(url, pool_size=1)
        self.engine = Engine(EngineConfig(retry_timeout=R))
        self.retried = 0

    def call(self, kind: str, data: dict[str, Any], now: int) -> tuple[int, Any]:
        for _ in range(50):
            try:
                outcome = self.store.run(lambda tx: self.engine.apply(tx, kind, data, now, "c"))
            except CommitError:  # a 503: the SDK retries it
                self.retried += 1
                continue
            return outcome.status, msgspec.to_builtins(outcome.data)
        raise AssertionError(f"{kind} kept failing with 503")

    def tick(self, now: int) -> None:
        for _ in range(50):
            try:
                self.store.run(lambda tx: self.engine.tick(tx, now))
            except CommitError:
                self.retried += 1
                continue
            return
        raise AssertionError("tick kept failing with 503")

    def read(self, fn: Callable[[Tx], Any]) -> Any:
        return self.store.run(fn)


@pytest.fixture(scope="module")
def clients() -> Iterator[list[Client]]:
    with temp_database() as url:
        made = [Client(url) for _ in range(CLIENTS)]
        yield made
        for c in made:
            c.store.close()


def race(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run the jobs on their own threads, released at once; their results, in order."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int, job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = job()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(c: Client, id: str, timeout_at: int, target: bool = True) -> None:
    tags = {"resonate:target": G} if target else {}
    status, _ = c.call("promise.create", {"id": id, "timeoutAt": timeout_at, "tags": tags}, T0)
    assert status == 200


def acquire(id: str, version: int, pid: str) -> tuple[str, dict[str, Any]]:
    return "task.acquire", {"id": id, "version": version, "pid": pid, "ttl": 600_000}


def suspend(id: str, version: int, awaited: str) -> tuple[str, dict[str, Any]]:
    action = {
        "kind": "promise.register_callback",
        "head": {},
        "data": {"awaited": awaited, "awaiter": id},
    }
    return "task.suspend", {"id": id, "version": version, "actions": [action]}


def test_settle_vs_timeout_one_transition_and_the_awaiter_resumes(clients: list[Client]) -> None:
    first = clients[0]
    for round in range(12):
        # same origin: a task awaits promises of its own tree
        a, w = f"st{round}.a", f"st{round}"
        create(first, a, T0 + 10_000)
        create(first, w, T0 + 10**9)
        assert first.call(*acquire(w, 0, "w"), T0)[0] == 200
        assert first.call(*suspend(w, 1, a), T0)[0] == 200

        def settle(k: int, a: str = a) -> tuple[int, Any]:
            value = {"data": b64(f"k{k}")}
            data = {"id": a, "state": "resolved", "value": value}
            return clients[k].call("promise.settle", data, T0 + 9_999)

        jobs: list[Callable[[], Any]] = [lambda k=k: settle(k) for k in range(CLIENTS - 1)]
        jobs.append(lambda: clients[-1].tick(T0 + 10_001))
        answers = race(jobs)[:-1]

        final = first.call("promise.get", {"id": a}, T0 + 9_999)[1]["promise"]
        assert final["state"] in ("resolved", "rejected_timedout"), final
        assert all(status == 200 for status, _ in answers)
        # Every settler answers the one committed result.
        assert all(body["promise"] == final for _, body in answers), (final, answers)
        if final["state"] == "resolved":
            winners = [k for k in range(CLIENTS - 1) if final["value"]["data"] == b64(f"k{k}")]
            assert len(winners) == 1
        task_a = first.read(lambda tx, a=a: tx.get_task(a))
        assert task_a is not None and task_a.state == "fulfilled"
        # The awaiter's callback was not lost: resumed once, one execute at its version.
        task_w = first.call("task.get", {"id": w}, T0)[1]["task"]
        assert (task_w["state"], task_w["version"], task_w["resumes"]) == ("pending", 1, 1)
        executes = first.read(lambda tx: tx.all_executes())
        assert [(e.version, e.address) for e in executes if e.task_id == w] == [(1, G)]


def test_acquire_vs_acquire_one_winner_and_versions_fence(clients: list[Client]) -> None:
    first = clients[0]
    for round in range(12):
        t = f"aq{round}"
        create(first, t, T0 + 10**9)
        answers = race(
            [lambda k=k, t=t: clients[k].call(*acquire(t, 0, f"w{k}"), T0) for k in range(CLIENTS)]
        )
        statuses = sorted(status for status, _ in answers)
        assert statuses == [200] + [409] * (CLIENTS - 1), answers
        winner = next(k for k, (status, _) in enumerate(answers) if status == 200)
        row = first.read(lambda tx, t=t: tx.get_task(t))
        assert (row.state, row.version, row.pid) == ("acquired", 1, f"w{winner}")

        # Everyone now fulfills with version 1, plus a stale version 0: one fulfillment.
        def fulfill(k: int, version: int, t: str = t) -> tuple[int, Any]:
            action = {
                "kind": "promise.settle",
                "head": {},
                "data": {"id": t, "state": "resolved", "value": {"data": b64(f"k{k}")}},
            }
            data = {"id": t, "version": version, "action": action}
            return clients[k].call("task.fulfill", data, T0)

        answers = race(
            [
                *(lambda k=k: fulfill(k, 1) for k in range(CLIENTS - 1)),
                lambda: fulfill(CLIENTS - 1, 0),
            ]
        )
        assert answers[-1][0] == 409  # stale version: fenced
        won = [k for k, (status, _) in enumerate(answers) if status == 200]
        assert len(won) == 1, answers
        assert sorted(status for status, _ in answers) == [200] + [409] * (CLIENTS - 1)
        final = first.call("promise.get", {"id": t}, T0)[1]["promise"]
        assert (final["state"], final["value"]["data"]) == ("resolved", b64(f"k{won[0]}"))
        row = first.read(lambda tx, t=t: tx.get_task(t))
        assert (row.state, row.version) == ("fulfilled", 1)


def test_suspend_vs_settle_of_the_awaited_never_loses_the_callback(
    clients: list[Client],
) -> None:
    first = clients[0]
    pairs = CLIENTS // 2
    outcomes: set[int] = set()
    for round in range(10):
        names = [(f"ss{round}-{i}.a", f"ss{round}-{i}") for i in range(pairs)]
        for a, w in names:
            create(first, a, T0 + 10**9, target=False)
            create(first, w, T0 + 10**9)
            assert first.call(*acquire(w, 0, "w"), T0)[0] == 200
        jobs: list[Callable[[], Any]] = []
        for i, (a, w) in enumerate(names):
            jobs.append(lambda i=i, a=a, w=w: clients[2 * i].call(*suspend(w, 1, a), T0))
            jobs.append(
                lambda i=i, a=a: clients[2 * i + 1].call(
                    "promise.settle", {"id": a, "state": "resolved"}, T0
                )
            )
        answers = race(jobs)
        for i, (_, w) in enumerate(names):
            suspended, settled = answers[2 * i], answers[2 * i + 1]
            assert settled[0] == 200
            outcomes.add(suspended[0])
            task = first.call("task.get", {"id": w}, T0)[1]["task"]
            if suspended[0] == 200:  # suspended first: the settle resumed it
                assert (task["state"], task["version"], task["resumes"]) == ("pending", 1, 1)
            else:  # settled first: suspend saw it and kept the lease (300)
                assert suspended[0] == 300, suspended
                assert (task["state"], task["version"]) == ("acquired", 1)
    assert outcomes <= {200, 300}


def test_create_vs_create_of_one_id(clients: list[Client]) -> None:
    first = clients[0]
    for round in range(12):
        p = f"cc{round}"
        data = {"id": p, "timeoutAt": T0 + 10**9, "tags": {"resonate:target": G}}
        answers = race(
            [
                lambda k=k, data=data: clients[k].call("promise.create", data, T0)
                for k in range(CLIENTS)
            ]
        )
        assert {status for status, _ in answers} == {200}
        assert all(body == answers[0][1] for _, body in answers)
        rows = first.read(lambda tx, p=p: (tx.get_task(p), tx.all_executes()))
        assert rows[0] is not None and (rows[0].state, rows[0].version) == ("pending", 0)
        assert [e.task_id for e in rows[1]].count(p) == 1

        # task.create of one new id by every client: one acquires it, the others get 409.
        q = f"tc{round}"

        def task_create(k: int, q: str = q) -> tuple[int, Any]:
            inner = {"id": q, "timeoutAt": T0 + 10**9, "tags": {"resonate:target": G}}
            action = {"kind": "promise.create", "head": {}, "data": inner}
            return clients[k].call(
                "task.create", {"pid": f"w{k}", "ttl": 60_000, "action": action}, T0
            )

        answers = race([lambda k=k: task_create(k) for k in range(CLIENTS)])
        won = [k for k, (status, _) in enumerate(answers) if status == 200]
        assert len(won) == 1, answers
        assert sorted(status for status, _ in answers) == [200] + [409] * (CLIENTS - 1)
        row = first.read(lambda tx, q=q: tx.get_task(q))
        assert (row.state, row.version, row.pid) == ("acquired", 1, f"w{won[0]}")
    # The races did happen: some transactions were rerun by the store (a unique violation
    # when two creates of one id overlap, or a deadlock).
    assert sum(c.store.races for c in clients) > 0


def test_replicas_starting_together_migrate_once() -> None:
    with temp_database() as url:
        stores = race([lambda: PostgresStore(url, pool_size=1) for _ in range(6)])
        try:
            applied = sorted(s.applied_migrations for s in stores)
            assert applied == [[], [], [], [], [], [1, 2, 3, 4]]
        finally:
            for s in stores:
                s.close()


def test_connections_killed_by_the_database_are_replaced_without_an_error() -> None:
    """A restart or failover of PostgreSQL breaks every pooled connection: an operation that
    meets a broken one, before its COMMIT, runs again on a fresh connection."""
    with temp_database() as url:
        client = Client(url)
        store = PostgresStore(url, pool_size=3)
        try:
            for round in range(3):
                # Warm the pool: its connections are open and idle when they get killed.
                race([lambda: store.run(lambda tx: tx.next_deadline()) for _ in range(3)])
                name = url.rsplit("/", 1)[1]
                with psycopg.connect(admin_url(), autocommit=True) as admin:
                    killed = admin.execute(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = %s AND application_name = 'sustain'",
                        (name,),
                    ).fetchone()
                assert killed is not None and killed[0] >= 1
                id = f"after-kill-{round}"
                store.run(lambda tx, id=id: tx.insert_promise(_promise(id)))
                assert client.read(lambda tx, id=id: tx.get_promise(id)) == _promise(id)
        finally:
            store.close()
            client.store.close()


async def test_volatile_acknowledgement_commits_too() -> None:
    """``run_async(durable=False)`` answers before the WAL flush, but it is still a commit:
    other connections see it, and the setting does not leak to the next transaction."""
    with temp_database() as url:
        store = PostgresStore(url, pool_size=1)
        other = PostgresStore(url, pool_size=1)
        try:
            await store.run_async(lambda tx: tx.insert_promise(_promise("v")), durable=False)
            assert other.run(lambda tx: tx.get_promise("v")) == _promise("v")

            def setting(tx: Tx) -> Any:
                return tx.cursor.execute("SHOW synchronous_commit").fetchone()  # type: ignore[attr-defined]

            assert await store.run_async(setting, durable=False) == ("off",)
            assert await store.run_async(setting) == ("on",)
        finally:
            store.close()
            other.close()


def _crossed_locks(url: str, attempts: int) -> tuple[list[Any], list[PostgresStore]]:
    """Two operations lock promises ``x`` and ``y`` in opposite orders, each waiting until
    the other holds its first lock: a real deadlock, which PostgreSQL breaks by aborting one."""
    stores = [PostgresStore(url, pool_size=1, attempts=attempts) for _ in range(2)]
    barrier = threading.Barrier(2)

    def crossing(first: str, second: str, tag: str) -> Callable[[Tx], str]:
        runs = 0

        def op(tx: Tx) -> str:
            nonlocal runs
            runs += 1
            p = tx.get_promise(first)
            if runs == 1:  # a rerun comes after the other committed: nothing to wait for
                barrier.wait(timeout=30)
            tx.get_promise(second)
            assert p is not None
            tx.update_promise(msgspec.structs.replace(p, state="resolved", settledAt=1))
            return tag

        return op

    def attempt(store: PostgresStore, op: Callable[[Tx], str]) -> Any:
        try:
            return store.run(op)
        except CommitError as exc:
            return exc

    results = race(
        [
            lambda: attempt(stores[0], crossing("x", "y", "xy")),
            lambda: attempt(stores[1], crossing("y", "x", "yx")),
        ]
    )
    return results, stores


def test_a_deadlock_is_rerun_inside_the_store_then_surfaces_as_a_503_error() -> None:
    with temp_database() as url:
        setup = PostgresStore(url, pool_size=1)
        try:
            setup.run(
                lambda tx: (tx.insert_promise(_promise("x")), tx.insert_promise(_promise("y")))
            )
            results, stores = _crossed_locks(url, attempts=5)
            assert sorted(results) == ["xy", "yx"]  # both committed, one after a rerun
            # At least one rerun (a rerun may grab its first lock before the winner retakes
            # the row it was waiting for, and deadlock once more).
            assert sum(s.races for s in stores) >= 1
            states = setup.run(lambda tx: [p.state for p in tx.all_promises()])
            assert states == ["resolved", "resolved"]
            for s in stores:
                s.close()

            # With no rerun allowed, the loser gets StoreRaceError: a CommitError, which the
            # server answers 503 "Service unavailable: retry" (app.py) and the SDK retries.
            results, stores = _crossed_locks(url, attempts=1)
            lost = [r for r in results if isinstance(r, BaseException)]
            assert len(lost) == 1 and isinstance(lost[0], StoreRaceError), results
            assert "deadlock" in str(lost[0])
            for s in stores:
                s.close()
        finally:
            setup.close()
