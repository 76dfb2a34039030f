"""The facade's cheap plumbing keeps the semantics of what it replaced.

``LoopThread.submit`` wakes the loop once per burst instead of once per call (it replaced
``asyncio.run_coroutine_threadsafe``), ``Subscriptions.watch`` gives each watcher a future of
its own (it replaced one shared future behind ``asyncio.shield``), and the worker's
``_Slots`` take a free slot without a coroutine (it replaced ``asyncio.Semaphore``).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from sustain.sdk.handles import Subscriptions
from sustain.sdk.local import LocalNetwork
from sustain.sdk.loop import LoopThread
from sustain.sdk.worker import _Slots


async def _double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2


async def _fail() -> None:
    raise ValueError("boom")


def test_submit_from_many_threads_runs_every_coroutine() -> None:
    thread = LoopThread()
    try:
        results: list[list[Any]] = []

        def burst(base: int) -> None:
            futures = [thread.submit(_double(base + i)) for i in range(500)]
            results.append([f.result(timeout=10) for f in futures])

        workers = [threading.Thread(target=burst, args=(k * 1000,)) for k in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        assert sorted(map(tuple, results)) == sorted(
            tuple((k * 1000 + i) * 2 for i in range(500)) for k in range(4)
        )
    finally:
        thread.close()


def test_submit_passes_on_errors_and_cancellation() -> None:
    thread = LoopThread()
    try:
        with pytest.raises(ValueError, match="boom"):
            thread.submit(_fail()).result(timeout=10)
        started = threading.Event()
        cancelled = threading.Event()

        async def forever() -> None:
            started.set()
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

        future = thread.submit(forever())
        assert started.wait(10)
        assert future.cancel()  # the caller gave up (wait_for timing out in deliver)
        assert cancelled.wait(10)  # ... and the coroutine on the loop is cancelled too
    finally:
        thread.close()


def test_submit_awaitable_from_async_code() -> None:
    thread = LoopThread()
    try:

        async def caller() -> int:
            return await asyncio.wrap_future(thread.submit(_double(21)))

        assert asyncio.run(caller()) == 42
    finally:
        thread.close()


def test_submit_on_a_closed_loop_raises() -> None:
    thread = LoopThread()
    thread.close()
    coro = _double(1)
    with pytest.raises(RuntimeError):
        thread.submit(coro)
    coro.close()


async def test_a_cancelled_watcher_leaves_the_others_waiting() -> None:
    subs = Subscriptions(LocalNetwork(":memory:"), "poll://uni@g/p")
    first = asyncio.ensure_future(subs.watch("p1", listen=False))
    second = asyncio.ensure_future(subs.watch("p1", listen=False))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    record = {"id": "p1", "state": "resolved", "value": {}}
    subs.settled({"id": "p1", "state": "pending"})  # not settled yet: ignored
    assert not second.done()
    subs.settled(record)
    assert await second == record
    assert first.cancelled()


async def test_cancel_all_ends_every_watcher() -> None:
    subs = Subscriptions(LocalNetwork(":memory:"), "poll://uni@g/p")
    watchers = [asyncio.ensure_future(subs.watch(id, listen=False)) for id in ("a", "a", "b")]
    await asyncio.sleep(0)
    subs.cancel_all()
    done, _ = await asyncio.wait(watchers, timeout=5)
    assert len(done) == 3 and all(w.cancelled() for w in watchers)


async def test_slots_bound_concurrency_in_fifo_order() -> None:
    slots = _Slots(2)
    assert slots.take_now() and slots.take_now()
    assert not slots.take_now()
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.take()
        order.append(n)

    waiters = [asyncio.ensure_future(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert order == []
    slots.give()
    await asyncio.sleep(0)
    assert order == [0]
    slots.give()
    await asyncio.sleep(0)
    assert order == [0, 1]
    assert not slots.take_now()  # a waiter is queued: no jumping the queue
    slots.give()
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]
    for _ in range(2):  # five takes, three gives so far
        slots.give()
    assert slots.free == 2


async def test_a_cancelled_slot_waiter_neither_leaks_nor_blocks() -> None:
    slots = _Slots(1)
    assert slots.take_now()
    waiting = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.sleep(0)
    slots.give()
    assert slots.free == 1 and slots.take_now()  # the slot is free again, nobody queued
    # handed the slot just as it was cancelled: the slot goes on to the next waiter
    handed = asyncio.ensure_future(slots.take())
    after = asyncio.ensure_future(slots.take())
    await asyncio.sleep(0)
    slots.give()  # resolves `handed`
    handed.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert handed.cancelled()
    assert after.done() and not after.cancelled()
    slots.give()
    assert slots.free == 1
