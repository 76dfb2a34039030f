"""How callers wait for the writer: thread futures and asyncio futures, answered in bulk.

A thread caller (``run``, ``submit``) waits on a ``concurrent.futures.Future``.  An asyncio
caller (``run_async``) gets an ``AsyncWaiter``: a plain asyncio future of its own loop,
answered from the loop's thread.  Going through ``asyncio.wrap_future`` instead would cost,
per operation, a thread future with its condition variable plus one
``call_soon_threadsafe`` (a write to the loop's wake-up pipe); here a whole batch of answers
for one loop is one ``call_soon_threadsafe``.

``Done`` is one answer: (waiter, ok, result-or-exception).
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import Future
from typing import Any


class AsyncWaiter:
    """The asyncio side of one queued operation."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()


Waiter = Future[Any] | AsyncWaiter
Done = tuple[Waiter, bool, Any]


def start(waiter: Waiter) -> bool:
    """Mark the op as running; False when its caller cancelled it while it was queued."""
    if isinstance(waiter, AsyncWaiter):
        # Read from the writer thread: a cancel racing this check only means the op runs
        # and its answer is dropped (``_deliver`` skips a done future).
        return not waiter.future.cancelled()
    return waiter.set_running_or_notify_cancel()


def answered(waiter: Waiter) -> bool:
    """True when a thread future already holds its answer (async answers are deduplicated
    on delivery instead)."""
    return not isinstance(waiter, AsyncWaiter) and waiter.done()


def settle(done: list[Done]) -> None:
    """Deliver every answer: thread futures now, asyncio futures in one callback per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    # The usual batch is all one server's event loop: its list is kept at hand, so each
    # answer costs one append, not a dict lookup.
    last_loop: asyncio.AbstractEventLoop | None = None
    current: list[tuple[asyncio.Future[Any], bool, Any]] = []
    for waiter, ok, value in done:
        if isinstance(waiter, AsyncWaiter):
            if waiter.loop is not last_loop:
                last_loop = waiter.loop
                current = by_loop.setdefault(last_loop, [])
            current.append((waiter.future, ok, value))
        elif ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)
    for loop, answers in by_loop.items():
        # RuntimeError: the loop is closed, so nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_deliver, answers)


def _deliver(answers: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in answers:
        if future.done():
            continue  # cancelled by its caller meanwhile
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
