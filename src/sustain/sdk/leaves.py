"""Sync leaves run on threads of their own; their results reach the event loop in bulk.

``asyncio.to_thread`` costs the event loop, per call, a ``concurrent.futures.Future`` (with
its condition variable), a chained asyncio future and one ``call_soon_threadsafe`` (a write
to the loop's wake-up pipe, then a read and a callback on the loop) when the call ends.
With many short leaves (a workflow step that adds 1) that bookkeeping, not the leaf, is
what the loop spends its time on.  Here a call is an asyncio future and a queue entry; a
finished call appends its result to a list, and only the first result of a burst schedules
a ``drain`` on the loop: one wake-up answers every leaf that finished meanwhile (the same
pattern as the SQLite writer's answers, ``store/sqlite/waiters.py``).

Behaviour is ``to_thread``'s: the leaf runs in a copy of the caller's context variables, on
a thread that is not the loop's; threads are started on demand, one per leaf waiting to run
when none is idle, up to ``MAX_THREADS`` (the default executor's cap), so a blocking leaf
only holds its own thread.  A caller that is cancelled stops waiting, but a leaf that
started runs to its end (a thread cannot be interrupted); one still queued is dropped.

Lifetime: one pool per event loop, made on first use.  Threads are daemons and end after
``IDLE_SECONDS`` without work, so a pool whose loop stopped leaves nothing behind, and a
process never waits at exit for a leaf it would have abandoned anyway (an unacknowledged
step runs again on replay).  ``shutdown`` ends the idle threads of a loop's pool at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
import weakref
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")

MAX_THREADS = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default
IDLE_SECONDS = 10.0

# (future, context, fn, args, kwargs); None asks one thread to end
_Item = tuple["asyncio.Future[Any]", contextvars.Context, Callable[..., Any], tuple[Any, ...],
              dict[str, Any]]  # fmt: skip


class LeafPool:
    """The threads that run one event loop's sync leaves (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_threads: int = MAX_THREADS) -> None:
        self.loop = loop
        self.max_threads = max_threads
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        # Guards the counters and the results list; held for a few operations only.
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0  # threads that are waiting for an item (or about to)
        self._pending = 0  # items queued and not taken yet
        self._done: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._closed = False

    @property
    def threads(self) -> int:
        """How many threads the pool has now (for tests)."""
        return self._threads

    def busy(self) -> bool:
        """True while a leaf is queued or running, or its result is not on the loop yet
        (sustain.testing waits for that before it moves a virtual clock)."""
        with self._lock:
            return bool(self._pending or self._done or self._threads > self._idle)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run ``fn(*args, **kwargs)`` on a pool thread; called on the loop's thread."""
        future: asyncio.Future[T] = self.loop.create_future()
        item = (future, contextvars.copy_context(), fn, args, kwargs)
        with self._lock:
            self._pending += 1
            spawn = self._pending > self._idle and self._threads < self.max_threads
            if spawn:
                self._threads += 1
                self._idle += 1  # the new thread takes an item as soon as it runs
        if spawn:
            try:
                threading.Thread(target=self._work, name="sustain-leaf", daemon=True).start()
            except RuntimeError:  # no thread can start (interpreter shutdown, a limit)
                with self._lock:
                    self._threads -= 1
                    self._idle -= 1
                    if not self._threads:
                        self._pending -= 1
                        raise
        self._queue.put(item)
        return future

    def shutdown(self) -> None:
        """End every thread once it has no work (the running leaves finish first)."""
        with self._lock:
            self._closed = True
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)

    def _work(self) -> None:
        queue, lock = self._queue, self._lock
        while True:
            try:
                item = queue.get(timeout=IDLE_SECONDS)
            except Empty:
                with lock:
                    if self._pending:
                        continue  # an item is on its way and this thread was counted for it
                    self._idle -= 1
                    self._threads -= 1
                    return
            if item is None:
                with lock:
                    self._idle -= 1
                    self._threads -= 1
                return
            with lock:
                self._idle -= 1
                self._pending -= 1
            future, context, fn, args, kwargs = item
            if future.cancelled():  # its caller gave up while it was queued
                ok, value = False, None
            else:
                try:
                    ok, value = True, context.run(fn, *args, **kwargs)
                except BaseException as exc:  # the caller's await raises it, as to_thread does
                    ok, value = False, exc
            with lock:
                self._done.append((future, ok, value))
                first = len(self._done) == 1
                self._idle += 1
            if first:
                # RuntimeError: the loop is closed, so nobody is waiting any more.
                with contextlib.suppress(RuntimeError):
                    self.loop.call_soon_threadsafe(self._drain)
            del item, future, context, fn, args, kwargs, value  # keep no leaf alive while idle

    def _drain(self) -> None:
        with self._lock:
            done, self._done = self._done, []
        for future, ok, value in done:
            if future.done():
                continue  # cancelled by its caller meanwhile
            if ok:
                future.set_result(value)
            elif isinstance(value, StopIteration):
                # An asyncio future refuses StopIteration (to_thread's chaining fails on it
                # too); the caller still gets an error, not a hang.
                future.set_exception(RuntimeError(f"a leaf raised {value!r}"))
            else:
                future.set_exception(value)


class _Pools:
    """One pool per loop; the usual case is a single loop, kept at hand (``last``) so a leaf
    costs no weak-dictionary lookup."""

    def __init__(self) -> None:
        self.by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LeafPool] = (
            weakref.WeakKeyDictionary()
        )
        self.last: LeafPool | None = None


_pools = _Pools()


def pool(loop: asyncio.AbstractEventLoop | None = None) -> LeafPool:
    """The running (or given) loop's pool, made on first use."""
    loop = loop or asyncio.get_running_loop()
    last = _pools.last
    if last is not None and last.loop is loop:
        return last
    found = _pools.by_loop.get(loop)
    if found is None:
        found = _pools.by_loop[loop] = LeafPool(loop)
    _pools.last = found
    return found


def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
    """``asyncio.to_thread(fn, *args, **kwargs)`` on the running loop's leaf pool."""
    return pool().submit(fn, *args, **kwargs)


def busy(loop: asyncio.AbstractEventLoop) -> bool:
    """True while ``loop``'s pool has a leaf queued, running or not yet answered."""
    found = _pools.by_loop.get(loop)
    return found is not None and found.busy()


def shutdown(loop: asyncio.AbstractEventLoop) -> None:
    """End the threads of ``loop``'s pool (a later leaf on that loop makes a new pool)."""
    found = _pools.by_loop.pop(loop, None)
    if found is not None:
        found.shutdown()
    if _pools.last is found:
        _pools.last = None
