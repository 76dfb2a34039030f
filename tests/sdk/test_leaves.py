"""The leaf pool (sdk/leaves.py): sync leaves on threads of their own, answered in bulk.

Each test runs the pool on a real event loop with real threads: what ``asyncio.to_thread``
promised (another thread, the caller's context variables, errors raised at the ``await``, a
blocking leaf holds only its own thread) still holds, and the pool's threads end.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time

import pytest

from sustain.sdk import leaves

WAIT = 10.0
var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


def wait_until(check: object, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


async def test_a_leaf_runs_on_another_thread_with_the_callers_context() -> None:
    var.set("caller")
    here = threading.get_ident()

    def leaf(x: int, *, y: int) -> tuple[int, int, str]:
        return x + y, threading.get_ident(), var.get()

    total, ident, seen = await leaves.run(leaf, 1, y=2)
    assert (total, seen) == (3, "caller")
    assert ident != here


async def test_errors_are_raised_at_the_await() -> None:
    def fails() -> None:
        raise ValueError("boom")

    def stops() -> None:
        raise StopIteration  # an asyncio future refuses it: still an error, never a hang

    with pytest.raises(ValueError, match="boom"):
        await leaves.run(fails)
    with pytest.raises(RuntimeError, match="StopIteration"):
        await leaves.run(stops)


async def test_a_burst_is_all_answered_by_a_bounded_number_of_threads() -> None:
    pool = leaves.LeafPool(asyncio.get_running_loop(), max_threads=4)
    results = await asyncio.gather(*[pool.submit(pow, i, 2) for i in range(500)])
    assert results == [i * i for i in range(500)]
    assert 1 <= pool.threads <= 4
    pool.shutdown()


async def test_blocked_leaves_hold_only_their_own_threads() -> None:
    pool = leaves.LeafPool(asyncio.get_running_loop(), max_threads=4)
    release = threading.Event()
    blocked = [pool.submit(release.wait, WAIT) for _ in range(3)]
    try:
        # three threads are stuck; a fourth is started for the next leaf
        assert await asyncio.wait_for(pool.submit(lambda: "free"), WAIT) == "free"
    finally:
        release.set()
    assert await asyncio.gather(*blocked) == [True, True, True]
    pool.shutdown()


async def test_a_leaf_cancelled_while_queued_never_runs() -> None:
    pool = leaves.LeafPool(asyncio.get_running_loop(), max_threads=1)
    release = threading.Event()
    ran: list[str] = []
    busy = pool.submit(release.wait, WAIT)
    queued = pool.submit(ran.append, "ran")
    queued.cancel()
    release.set()
    assert await busy is True
    assert await pool.submit(lambda: "after") == "after"  # FIFO: the cancelled one went first
    assert ran == []
    pool.shutdown()


async def test_a_caller_cancelled_while_its_leaf_runs_stops_waiting() -> None:
    pool = leaves.LeafPool(asyncio.get_running_loop(), max_threads=2)
    release = threading.Event()
    running = pool.submit(release.wait, WAIT)
    waiter = asyncio.ensure_future(running)
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    release.set()
    # the late answer is dropped, and the pool goes on answering
    assert await pool.submit(lambda: 7) == 7
    pool.shutdown()


async def test_idle_threads_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(leaves, "IDLE_SECONDS", 0.05)
    pool = leaves.LeafPool(asyncio.get_running_loop(), max_threads=3)
    release = threading.Event()
    blocked = [pool.submit(release.wait, WAIT) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert pool.threads == 3
    release.set()
    await asyncio.gather(*blocked)
    await asyncio.to_thread(wait_until, lambda: pool.threads == 0)
    # a pool whose threads all ended starts one again for the next leaf
    assert await pool.submit(lambda: "again") == "again"


async def test_shutdown_ends_the_threads_and_a_new_pool_takes_over() -> None:
    loop = asyncio.get_running_loop()
    first = leaves.pool(loop)
    assert await leaves.run(lambda: 1) == 1
    leaves.shutdown(loop)
    await asyncio.to_thread(wait_until, lambda: first.threads == 0)
    assert await leaves.run(lambda: 2) == 2
    assert leaves.pool(loop) is not first


def test_an_answer_after_the_loop_closed_is_dropped() -> None:
    loop = asyncio.new_event_loop()
    pool = leaves.LeafPool(loop, max_threads=1)
    release = threading.Event()
    done = threading.Event()

    def leaf() -> None:
        release.wait(WAIT)
        done.set()

    pool.submit(leaf)
    loop.close()
    release.set()
    assert done.wait(WAIT)
    pool.shutdown()
    wait_until(lambda: pool.threads == 0)  # the thread survived the closed loop and ended
