"""Size-bounded searches (``max_size``, docs/security.md "Limits") over every store.

With ``max_size`` a store stops after the first row whose running ``promise_size`` (or
``schedule_size``) passes it, and reads no further; without it, nothing changes.  The engine
cuts that row off (``engine.pages.fit``), so pages follow one another without a gap or a
repeat; that is checked here through the store, and end to end in tests/server/test_limits.py.
"""

from __future__ import annotations

from msgspec.structs import replace

from sustain.engine.pages import fit
from sustain.protocol.limits import promise_size, schedule_size
from sustain.protocol.records import Value
from sustain.store.base import Store
from sustain.store.tx import Page, Tx
from tests.store.store_builders import promise, schedule

BIG = 10_000


def size_of_one(store: Store) -> int:
    first = store.run(lambda tx: tx.get_promise("p00"))
    assert first is not None
    return promise_size(first)


def fill(store: Store) -> list[str]:
    ids = [f"p{i:02d}" for i in range(12)]

    def put(tx: Tx) -> None:
        for id in ids:
            tx.insert_promise(promise(id, tags={"k": "v"}, param=Value(data="x" * BIG)))

    store.run(put)
    return ids


def test_without_max_size_every_row_up_to_the_limit(store: Store) -> None:
    ids = fill(store)
    found = store.run(lambda tx: tx.search_promises(None, {"k": "v"}, Page(100)))
    assert [p.id for p in found] == ids


def test_a_search_stops_after_the_row_that_passes_the_budget(store: Store) -> None:
    ids = fill(store)
    one = size_of_one(store)
    budget = 3 * one + one // 2
    found = store.run(lambda tx: tx.search_promises(None, {"k": "v"}, Page(100, None, budget)))
    # Three fit, the fourth passes the budget and ends the read.
    assert [p.id for p in found] == ids[:4]
    page, more = fit(found, 100, budget, promise_size)
    assert [p.id for p in page] == ids[:3]
    assert more


def test_paging_by_size_sees_every_row_once(store: Store) -> None:
    ids = fill(store)
    budget = 5 * size_of_one(store)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        found = store.run(
            lambda tx, c=cursor: tx.search_promises(None, {"k": "v"}, Page(101, c, budget))
        )
        page, more = fit(found, 100, budget, promise_size)
        seen += [p.id for p in page]
        if not more:
            break
        cursor = page[-1].id
    assert seen == ids


def test_a_row_larger_than_the_budget_is_a_page_of_its_own(store: Store) -> None:
    ids = fill(store)
    found = store.run(lambda tx: tx.search_promises(None, {}, Page(101, None, 10)))
    assert [p.id for p in found] == ids[:1]
    page, more = fit(found, 100, 10, promise_size)
    assert [p.id for p in page] == ids[:1]
    assert more


def test_schedules_page_by_size_too(store: Store) -> None:
    big = [replace(schedule(f"s{i}"), promiseParam=Value(data="y" * BIG)) for i in range(6)]

    def put(tx: Tx) -> None:
        for s in big:
            tx.put_schedule(s)

    store.run(put)
    budget = 2 * schedule_size(big[0]) + 1
    found = store.run(lambda tx: tx.search_schedules({}, Page(101, None, budget)))
    assert [s.id for s in found] == ["s0", "s1", "s2"]
    page, more = fit(found, 100, budget, schedule_size)
    assert [s.id for s in page] == ["s0", "s1"]
    assert more
