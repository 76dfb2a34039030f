"""The store contract: every ``Tx`` method's behaviour and ordering, over every store.

Each test runs against ``MemoryStore``, ``SqliteStore`` (a real file) and ``PostgresStore`` (a
throw-away database) through the public ``Store.run`` seam, so the engine can rely on any
store answering alike.
"""

from __future__ import annotations

import threading

import pytest

from sustain.protocol.records import Promise, Value
from sustain.store.base import Store
from sustain.store.tx import LEASE, RETRY, Callback, Execute, Listener, Page, TaskRow, Tx
from tests.store.store_builders import BRANCH, TARGET, promise, schedule

# Odd but NUL-free ids: non-ASCII from several planes, spaces, dots, quotes, JSON-ish text.
ODD_IDS = [
    "a",
    "a.1",
    "a.10",
    "a.2",
    "A",
    "Z z",
    "é",
    "日本.語",
    "😀",
    "\uffff",
    '"quoted"',
    "{}",
    "x'y",
    "%20",
    "\t\n",
]


def byte_order(ids: list[str]) -> list[str]:
    return sorted(ids, key=lambda s: s.encode())


# -- promises -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "value"),
    [
        (Value(), Value()),
        (Value(headers={}, data=""), Value(headers={}, data="")),
        (Value(headers=None, data=""), Value(headers={}, data=None)),
        (Value(headers={"k": "v", "ü": "日"}, data="aGk="), Value(headers={"": ""}, data="x")),
    ],
)
def test_promise_round_trips_absent_and_empty_fields(
    store: Store, param: Value, value: Value
) -> None:
    p = promise(
        "p",
        param=param,
        value=value,
        tags={TARGET: "poll://any@g", "k": "", "": "v", "j": '{"a":1}'},
        timeout_at=2**62,
        created_at=-1,
    )
    store.run(lambda tx: tx.insert_promise(p))
    got = store.run(lambda tx: tx.get_promise("p"))
    assert got == p
    assert got is not None
    assert got.param.headers == param.headers
    assert got.param.data == param.data
    assert got.value.headers == value.headers
    assert got.value.data == value.data


def test_get_missing_promise_is_none(store: Store) -> None:
    assert store.run(lambda tx: tx.get_promise("nope")) is None


def test_update_promise_replaces_state_value_and_settled_at(store: Store) -> None:
    p = promise("p", param=Value(data="in"))
    store.run(lambda tx: tx.insert_promise(p))
    settled = promise(
        "p",
        state="resolved",
        param=Value(data="in"),
        value=Value(headers={"h": "1"}, data="out"),
        settled_at=42,
    )
    store.run(lambda tx: tx.update_promise(settled))
    assert store.run(lambda tx: tx.get_promise("p")) == settled


def test_odd_ids_round_trip_and_list_in_byte_order(store: Store) -> None:
    def insert(tx: Tx) -> None:
        for id in reversed(ODD_IDS):
            tx.insert_promise(promise(id, tags={"id": id}))

    store.run(insert)
    for id in ODD_IDS:
        assert store.run(lambda tx, id=id: tx.get_promise(id)) == promise(id, tags={"id": id})
    listed = store.run(lambda tx: [p.id for p in tx.all_promises()])
    assert listed == byte_order(ODD_IDS)
    searched = store.run(lambda tx: [p.id for p in tx.search_promises(None, {}, Page(100))])
    assert searched == byte_order(ODD_IDS)


def test_search_promises_filters_state_tags_cursor_and_limit(store: Store) -> None:
    def insert(tx: Tx) -> None:
        for i in range(10):
            tags = {"parity": "even" if i % 2 == 0 else "odd", "n": str(i)}
            if i % 3 == 0:
                tags["three"] = "yes"
            state = "pending" if i < 6 else "resolved"
            tx.insert_promise(promise(f"p{i}", state=state, tags=tags))

    store.run(insert)

    def ids(tx: Tx, state: str | None, tags: dict[str, str], limit: int, cursor: str | None):
        return [p.id for p in tx.search_promises(state, tags, Page(limit, cursor))]  # type: ignore[arg-type]

    assert store.run(lambda tx: ids(tx, None, {}, 100, None)) == [f"p{i}" for i in range(10)]
    assert store.run(lambda tx: ids(tx, "pending", {}, 100, None)) == [f"p{i}" for i in range(6)]
    assert store.run(lambda tx: ids(tx, None, {"parity": "even"}, 100, None)) == [
        "p0",
        "p2",
        "p4",
        "p6",
        "p8",
    ]
    # Every pair must be present; one missing or different pair excludes.
    assert store.run(lambda tx: ids(tx, None, {"parity": "even", "three": "yes"}, 100, None)) == [
        "p0",
        "p6",
    ]
    assert store.run(lambda tx: ids(tx, None, {"parity": "even", "three": "no"}, 100, None)) == []
    assert store.run(lambda tx: ids(tx, None, {"missing": ""}, 100, None)) == []
    assert store.run(
        lambda tx: ids(tx, "resolved", {"parity": "even", "three": "yes"}, 100, None)
    ) == ["p6"]
    # Pagination: limit, then strictly after the cursor.
    assert store.run(lambda tx: ids(tx, None, {"parity": "odd"}, 2, None)) == ["p1", "p3"]
    assert store.run(lambda tx: ids(tx, None, {"parity": "odd"}, 2, "p3")) == ["p5", "p7"]
    assert store.run(lambda tx: ids(tx, None, {}, 3, "p8")) == ["p9"]
    assert store.run(lambda tx: ids(tx, None, {}, 3, "p9")) == []
    assert store.run(lambda tx: ids(tx, "pending", {}, 10, "p4")) == ["p5"]


def test_search_tag_values_compare_as_exact_strings(store: Store) -> None:
    def insert(tx: Tx) -> None:
        tx.insert_promise(promise("a", tags={"k": "1"}))
        tx.insert_promise(promise("b", tags={"k": "01"}))
        tx.insert_promise(promise("c", tags={"k": "true"}))
        tx.insert_promise(promise("d", tags={"k.x": "1", "k": ""}))

    store.run(insert)
    for value, expected in [("1", ["a"]), ("01", ["b"]), ("true", ["c"]), ("", ["d"])]:
        found = store.run(lambda tx, v=value: tx.search_promises(None, {"k": v}, Page(10)))
        assert [p.id for p in found] == expected
    found = store.run(lambda tx: tx.search_promises(None, {"k.x": "1"}, Page(10)))
    assert [p.id for p in found] == ["d"]


def test_branch_promises_by_id(store: Store) -> None:
    def insert(tx: Tx) -> None:
        tx.insert_promise(promise("r.2", tags={BRANCH: "r"}))
        tx.insert_promise(promise("r", tags={BRANCH: "r"}))
        tx.insert_promise(promise("r.1", tags={BRANCH: "r"}))
        tx.insert_promise(promise("s.1", tags={BRANCH: "s"}))
        tx.insert_promise(promise("r.3", tags={"other": "r"}))

    store.run(insert)
    assert store.run(lambda tx: [p.id for p in tx.branch_promises("r")]) == ["r", "r.1", "r.2"]
    assert store.run(lambda tx: tx.branch_promises("none")) == []


def test_due_promises_are_pending_targeted_and_due(store: Store) -> None:
    def insert(tx: Tx) -> None:
        tx.insert_promise(promise("due-b", tags={TARGET: "poll://any@g"}, timeout_at=100))
        tx.insert_promise(promise("due-a", tags={TARGET: ""}, timeout_at=50))
        tx.insert_promise(promise("later", tags={TARGET: "poll://any@g"}, timeout_at=101))
        tx.insert_promise(promise("no-target", timeout_at=10))
        tx.insert_promise(
            promise("settled", state="resolved", tags={TARGET: "x"}, timeout_at=10, settled_at=5)
        )

    store.run(insert)
    assert store.run(lambda tx: [p.id for p in tx.due_promises(100)]) == ["due-a", "due-b"]
    assert store.run(lambda tx: tx.due_promises(49)) == []
    # Settling removes a promise from the due set (the timeout is derived, not stored).
    store.run(
        lambda tx: tx.update_promise(
            promise("due-a", state="resolved", tags={TARGET: ""}, timeout_at=50, settled_at=7)
        )
    )
    assert store.run(lambda tx: [p.id for p in tx.due_promises(1000)]) == ["due-b", "later"]


# -- tasks --------------------------------------------------------------------------------


def test_tasks_put_get_replace_and_due(store: Store) -> None:
    rows = [
        TaskRow("t3", "pending", 0, RETRY, 300),
        TaskRow("t1", "acquired", 2, LEASE, 100, pid="w-1", ttl=5_000),
        TaskRow("t2", "suspended", 1),
        TaskRow("t0", "fulfilled", 4, ttl=1),
    ]

    def put(tx: Tx) -> None:
        for row in rows:
            tx.put_task(row)

    store.run(put)
    for row in rows:
        assert store.run(lambda tx, r=row: tx.get_task(r.id)) == row
    assert store.run(lambda tx: tx.get_task("missing")) is None
    assert store.run(lambda tx: [t.id for t in tx.all_tasks()]) == ["t0", "t1", "t2", "t3"]
    assert store.run(lambda tx: [t.id for t in tx.due_tasks(300)]) == ["t1", "t3"]
    assert store.run(lambda tx: [t.id for t in tx.due_tasks(299)]) == ["t1"]
    assert store.run(lambda tx: tx.due_tasks(99)) == []
    released = TaskRow("t1", "pending", 2, RETRY, 999)
    store.run(lambda tx: tx.put_task(released))
    assert store.run(lambda tx: tx.get_task("t1")) == released
    assert store.run(lambda tx: [t.id for t in tx.due_tasks(300)]) == ["t3"]


# -- callbacks ----------------------------------------------------------------------------


def test_callbacks_lifecycle_and_orderings(store: Store) -> None:
    def add(tx: Tx) -> None:
        tx.add_callback("p2", "w2", False)
        tx.add_callback("p1", "w2", False)
        tx.add_callback("p1", "w1", False)
        tx.add_callback("p3", "w1", True)

    store.run(add)
    assert store.run(lambda tx: tx.callbacks_on("p1")) == [
        Callback("p1", "w1", False),
        Callback("p1", "w2", False),
    ]
    assert store.run(lambda tx: tx.all_callbacks()) == [
        Callback("p1", "w1", False),
        Callback("p3", "w1", True),
        Callback("p1", "w2", False),
        Callback("p2", "w2", False),
    ]
    assert store.run(lambda tx: (tx.count_ready("w1"), tx.count_ready("w2"))) == (1, 0)

    # Re-adding keeps the pair single; ready is only ever raised, never lowered.
    store.run(lambda tx: tx.add_callback("p3", "w1", False))
    assert store.run(lambda tx: tx.callbacks_on("p3")) == [Callback("p3", "w1", True)]
    store.run(lambda tx: tx.add_callback("p2", "w2", True))
    assert store.run(lambda tx: tx.callbacks_on("p2")) == [Callback("p2", "w2", True)]
    assert store.run(lambda tx: len(tx.all_callbacks())) == 4

    store.run(lambda tx: tx.mark_ready("p1"))
    assert store.run(lambda tx: (tx.count_ready("w1"), tx.count_ready("w2"))) == (2, 2)

    store.run(lambda tx: tx.add_callback("p4", "w2", False))
    store.run(lambda tx: tx.delete_ready("w2"))
    assert store.run(lambda tx: tx.all_callbacks()) == [
        Callback("p1", "w1", True),
        Callback("p3", "w1", True),
        Callback("p4", "w2", False),
    ]
    assert store.run(lambda tx: tx.count_ready("w2")) == 0

    store.run(lambda tx: tx.add_callback("p5", "w1", False))
    store.run(lambda tx: tx.delete_callback("p5", "w1"))
    store.run(lambda tx: tx.delete_callback("p5", "w1"))  # absent: nothing happens
    store.run(lambda tx: tx.delete_callback("p4", "nobody"))
    assert store.run(lambda tx: len(tx.all_callbacks())) == 3
    store.run(lambda tx: tx.delete_callbacks_of("w1"))
    assert store.run(lambda tx: tx.all_callbacks()) == [Callback("p4", "w2", False)]
    assert store.run(lambda tx: tx.callbacks_on("p1")) == []


# -- listeners ----------------------------------------------------------------------------


def test_listeners_add_once_and_take(store: Store) -> None:
    def add(tx: Tx) -> None:
        tx.add_listener("p", "poll://uni@g/b")
        tx.add_listener("p", "http://x/a")
        tx.add_listener("p", "poll://uni@g/b")
        tx.add_listener("o", "poll://any@g")

    store.run(add)
    assert store.run(lambda tx: tx.all_listeners()) == [
        Listener("o", "poll://any@g"),
        Listener("p", "http://x/a"),
        Listener("p", "poll://uni@g/b"),
    ]
    assert store.run(lambda tx: tx.take_listeners("p")) == ["http://x/a", "poll://uni@g/b"]
    assert store.run(lambda tx: tx.take_listeners("p")) == []
    assert store.run(lambda tx: tx.all_listeners()) == [Listener("o", "poll://any@g")]


# -- outbox -------------------------------------------------------------------------------


def test_outbox_replace_dedupe_claim_and_views(store: Store) -> None:
    assert store.run(lambda tx: tx.has_outbox()) is False

    def fill(tx: Tx) -> None:
        tx.insert_promise(promise("p1", tags={"v": "1"}))
        tx.insert_promise(promise("p2"))
        tx.put_execute("t2", 0, "poll://any@g")
        tx.put_execute("t1", 0, "poll://any@g")
        tx.put_execute("t2", 3, "poll://any@h")  # replaces t2's execute
        tx.put_unblock("p2", "poll://uni@g/1")
        tx.put_unblock("p1", "poll://uni@g/2")
        tx.put_unblock("p1", "poll://uni@g/1")
        tx.put_unblock("p1", "poll://uni@g/2")  # already there

    store.run(fill)
    assert store.run(lambda tx: tx.has_outbox()) is True
    assert store.run(lambda tx: tx.all_executes()) == [
        Execute("t1", 0, "poll://any@g"),
        Execute("t2", 3, "poll://any@h"),
    ]
    assert store.run(lambda tx: tx.all_unblocks()) == [
        Listener("p1", "poll://uni@g/1"),
        Listener("p1", "poll://uni@g/2"),
        Listener("p2", "poll://uni@g/1"),
    ]
    # The unblock carries the promise as it is when claimed, not when enqueued.
    resolved = promise("p1", state="resolved", tags={"v": "1"}, settled_at=9)
    store.run(lambda tx: tx.update_promise(resolved))
    executes, unblocks = store.run(lambda tx: tx.claim_outbox(100))
    assert sorted(executes, key=lambda e: e.task_id) == [
        Execute("t1", 0, "poll://any@g"),
        Execute("t2", 3, "poll://any@h"),
    ]
    assert sorted((p.id, a, p.state) for p, a in unblocks) == [
        ("p1", "poll://uni@g/1", "resolved"),
        ("p1", "poll://uni@g/2", "resolved"),
        ("p2", "poll://uni@g/1", "pending"),
    ]
    assert all(p == resolved for p, _ in unblocks if p.id == "p1")
    assert store.run(lambda tx: tx.has_outbox()) is False
    assert store.run(lambda tx: tx.claim_outbox(100)) == ([], [])


def test_claim_outbox_respects_limit_and_claims_each_entry_once(store: Store) -> None:
    def fill(tx: Tx) -> None:
        for i in range(5):
            tx.insert_promise(promise(f"p{i}"))
            tx.put_execute(f"t{i}", i, "poll://any@g")
            tx.put_unblock(f"p{i}", "poll://any@g")

    store.run(fill)
    seen_x: list[str] = []
    seen_u: list[str] = []
    for _ in range(3):
        executes, unblocks = store.run(lambda tx: tx.claim_outbox(2))
        assert len(executes) <= 2
        assert len(unblocks) <= 2
        seen_x += [e.task_id for e in executes]
        seen_u += [p.id for p, _ in unblocks]
    assert sorted(seen_x) == [f"t{i}" for i in range(5)]
    assert sorted(seen_u) == [f"p{i}" for i in range(5)]
    assert store.run(lambda tx: tx.has_outbox()) is False


def test_has_outbox_with_only_unblocks(store: Store) -> None:
    store.run(lambda tx: (tx.insert_promise(promise("p")), tx.put_unblock("p", "a")))
    assert store.run(lambda tx: tx.has_outbox()) is True


# -- schedules ----------------------------------------------------------------------------


def test_schedules_put_get_search_due_delete(store: Store) -> None:
    full = schedule("s2", next_run_at=200, tags={TARGET: "poll://any@g", "team": "a"})
    full = type(full)(
        **{
            **{f: getattr(full, f) for f in full.__struct_fields__},
            "promiseParam": Value(headers={}, data=""),
            "lastRunAt": 140,
        }
    )

    def put(tx: Tx) -> None:
        tx.put_schedule(schedule("s3", next_run_at=100, tags={"team": "b"}))
        tx.put_schedule(full)
        tx.put_schedule(schedule("s1", next_run_at=300, tags={"team": "a"}))

    store.run(put)
    assert store.run(lambda tx: tx.get_schedule("s2")) == full
    assert store.run(lambda tx: tx.get_schedule("none")) is None
    assert store.run(lambda tx: [s.id for s in tx.search_schedules({}, Page(10))]) == [
        "s1",
        "s2",
        "s3",
    ]
    assert store.run(lambda tx: [s.id for s in tx.search_schedules({"team": "a"}, Page(10))]) == [
        "s1",
        "s2",
    ]
    assert store.run(
        lambda tx: [s.id for s in tx.search_schedules({"team": "a"}, Page(1, "s1"))]
    ) == ["s2"]
    assert store.run(lambda tx: [s.id for s in tx.search_schedules({}, Page(2))]) == ["s1", "s2"]
    assert store.run(lambda tx: [s.id for s in tx.due_schedules(200)]) == ["s2", "s3"]
    moved = schedule("s3", next_run_at=1_000, tags={"team": "b"})
    store.run(lambda tx: tx.put_schedule(moved))
    assert store.run(lambda tx: tx.get_schedule("s3")) == moved
    assert store.run(lambda tx: [s.id for s in tx.due_schedules(200)]) == ["s2"]
    assert store.run(lambda tx: tx.delete_schedule("s2")) is True
    assert store.run(lambda tx: tx.delete_schedule("s2")) is False
    assert store.run(lambda tx: [s.id for s in tx.search_schedules({}, Page(10))]) == ["s1", "s3"]


# -- whole store --------------------------------------------------------------------------


def test_next_deadline_is_the_earliest_timer(store: Store) -> None:
    assert store.run(lambda tx: tx.next_deadline()) is None
    store.run(lambda tx: tx.insert_promise(promise("untargeted", timeout_at=1)))
    store.run(
        lambda tx: tx.insert_promise(
            promise("done", state="resolved", tags={TARGET: "x"}, timeout_at=2, settled_at=0)
        )
    )
    assert store.run(lambda tx: tx.next_deadline()) is None
    store.run(lambda tx: tx.put_schedule(schedule("s", next_run_at=500)))
    assert store.run(lambda tx: tx.next_deadline()) == 500
    store.run(lambda tx: tx.put_task(TaskRow("t", "pending", 0, RETRY, 400)))
    assert store.run(lambda tx: tx.next_deadline()) == 400
    store.run(lambda tx: tx.insert_promise(promise("p", tags={TARGET: "x"}, timeout_at=300)))
    assert store.run(lambda tx: tx.next_deadline()) == 300
    store.run(lambda tx: tx.put_task(TaskRow("t", "pending", 0, RETRY, 100)))
    assert store.run(lambda tx: tx.next_deadline()) == 100
    store.run(lambda tx: tx.put_task(TaskRow("t", "suspended", 0)))
    assert store.run(lambda tx: tx.next_deadline()) == 300


def test_reset_deletes_every_row(store: Store) -> None:
    def fill(tx: Tx) -> None:
        tx.insert_promise(promise("p", tags={TARGET: "x", BRANCH: "p"}))
        tx.put_task(TaskRow("p", "pending", 0, RETRY, 10))
        tx.add_callback("p", "q", True)
        tx.add_listener("p", "a")
        tx.put_execute("p", 0, "a")
        tx.put_unblock("p", "a")
        tx.put_schedule(schedule("s"))

    store.run(fill)

    def everything(tx: Tx) -> list[object]:
        return [
            tx.all_promises(),
            tx.all_tasks(),
            tx.all_callbacks(),
            tx.all_listeners(),
            tx.all_executes(),
            tx.all_unblocks(),
            tx.search_schedules({}, Page(10)),
        ]

    assert all(store.run(everything))
    store.run(lambda tx: tx.reset())
    assert store.run(everything) == [[]] * 7
    assert store.run(lambda tx: (tx.next_deadline(), tx.has_outbox())) == (None, False)


# -- transactions -------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_failing_op_rolls_back_alone_and_raises_its_own_error(store: Store) -> None:
    store.run(lambda tx: tx.insert_promise(promise("kept")))

    def write_then_fail(tx: Tx) -> None:
        tx.insert_promise(promise("lost"))
        tx.put_task(TaskRow("kept", "pending", 0, RETRY, 1))
        tx.add_callback("kept", "lost", True)
        tx.put_execute("kept", 0, "a")
        tx.update_promise(promise("kept", state="resolved", settled_at=1))
        raise Boom("op failed")

    with pytest.raises(Boom, match="op failed"):
        store.run(write_then_fail)
    assert store.run(lambda tx: [p.id for p in tx.all_promises()]) == ["kept"]
    assert store.run(lambda tx: tx.get_promise("kept")) == promise("kept")
    assert store.run(lambda tx: (tx.all_tasks(), tx.all_callbacks(), tx.has_outbox())) == (
        [],
        [],
        False,
    )


def test_concurrent_ops_with_failures_keep_every_good_write(store: Store) -> None:
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    results: dict[str, str] = {}

    def worker(k: int) -> None:
        for i in range(per_thread):
            id = f"w{k}.{i}"

            def op(tx: Tx, id: str = id, fail: bool = i % 5 == 0) -> str:
                tx.insert_promise(promise(id))
                tx.add_listener(id, "a")
                if fail:
                    raise Boom(id)
                return id

            try:
                results[id] = store.run(op)
            except Boom as exc:
                errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    good = sorted(f"w{k}.{i}" for k in range(threads) for i in range(per_thread) if i % 5)
    assert sorted(results) == good
    assert all(results[id] == id for id in good)
    assert sorted(str(e) for e in errors) == sorted(
        f"w{k}.{i}" for k in range(threads) for i in range(per_thread) if i % 5 == 0
    )
    assert store.run(lambda tx: [p.id for p in tx.all_promises()]) == byte_order(good)
    assert store.run(lambda tx: [x.promise_id for x in tx.all_listeners()]) == byte_order(good)


async def test_run_async_returns_after_commit(store: Store) -> None:
    await store.run_async(lambda tx: tx.insert_promise(promise("p")))
    got: Promise | None = await store.run_async(lambda tx: tx.get_promise("p"))
    assert got == promise("p")
    with pytest.raises(Boom):
        await store.run_async(lambda tx: (tx.insert_promise(promise("q")), _raise()))
    assert await store.run_async(lambda tx: tx.get_promise("q")) is None


def _raise() -> None:
    raise Boom("async")


def test_ping(store: Store) -> None:
    assert store.ping() is True


def test_every_tx_method_is_implemented(store: Store) -> None:
    names = [n for n in dir(Tx) if not n.startswith("_")]
    missing = store.run(lambda tx: [n for n in names if not callable(getattr(tx, n, None))])
    assert names
    assert missing == []


def test_search_by_origin_tag_finds_a_tree(store: Store) -> None:
    def insert(tx: Tx) -> None:
        for root in ("r", "s"):
            tx.insert_promise(promise(root, tags={"resonate:origin": root}))
            for i in range(3):
                id = f"{root}.{i}"
                tx.insert_promise(promise(id, tags={"resonate:origin": root, "i": str(i)}))
        tx.insert_promise(promise("loose"))

    store.run(insert)
    tree = store.run(lambda tx: tx.search_promises(None, {"resonate:origin": "r"}, Page(10)))
    assert [p.id for p in tree] == ["r", "r.0", "r.1", "r.2"]
    page = store.run(
        lambda tx: tx.search_promises(None, {"resonate:origin": "s", "i": "1"}, Page(10, "s"))
    )
    assert [p.id for p in page] == ["s.1"]
