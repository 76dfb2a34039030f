"""``MemoryStore``: the whole ``Tx`` protocol in process memory, for tests and ``sustain dev``.

Theory of operation: one ``_Tables`` object holds every table as dicts.  ``run(op)`` takes a
lock (operations are fully serialised, as on SQLite), hands ``op`` a ``MemoryTx`` that writes
straight into the tables and records, for every write, a closure that undoes it.  If ``op``
raises, the undo log is replayed backwards and the exception propagates; otherwise the log
is dropped.  Records are stored as given and returned as stored: callers treat them as
immutable and write changed copies back (``msgspec.structs.replace``), which the engine does.

Orderings follow ``tx.py``'s docstrings: Python compares ``str`` by code point, which is
exactly the UTF-8 byte order SQLite uses.  Timer columns (promise timeouts, task timeouts,
schedule runs) are indexed by lazy heaps (``_Timers``) so the timer loop's queries do not
scan every row.
"""

from __future__ import annotations

import asyncio
import heapq
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from sustain.protocol.limits import promise_size, schedule_size
from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.tags import BRANCH, TARGET
from sustain.store.memory_queues import MemoryQueues, QueueTables, Undo
from sustain.store.memory_queues import set_key as _set_key
from sustain.store.sql.rows import sized
from sustain.store.tx import Callback, Execute, Listener, Page, TaskRow, Tx

T = TypeVar("T")
R = TypeVar("R")


class _Timers:
    """A lazy min-heap of ``(time, id)`` hints over one table's timer column.

    Entries are never updated in place: a write pushes the row's new time and leaves the old
    entry behind; readers drop entries that no longer match the row (``current``).  Undoing a
    write pushes the old time again, so a hint dropped during a rolled-back transaction
    comes back with its row.  Due queries and ``first`` thus cost O(k log n), not a scan.
    """

    def __init__(self) -> None:
        self.heap: list[tuple[int, str]] = []

    def push(self, at: int, id: str) -> None:
        heapq.heappush(self.heap, (at, id))

    def due(self, time: int, current: Callable[[str], int | None]) -> list[str]:
        heap = self.heap
        found: dict[str, int] = {}
        while heap and heap[0][0] <= time:
            at, id = heapq.heappop(heap)
            if current(id) == at:
                found[id] = at
        for id, at in found.items():  # still due until their rows change: keep the hints
            heapq.heappush(heap, (at, id))
        return sorted(found)

    def first(self, current: Callable[[str], int | None]) -> int | None:
        heap = self.heap
        while heap:
            at, id = heap[0]
            if current(id) == at:
                return at
            heapq.heappop(heap)
        return None


def _promise_timer(p: Promise | None) -> int | None:
    return p.timeoutAt if p is not None and p.state == "pending" and TARGET in p.tags else None


def _task_timer(t: TaskRow | None) -> int | None:
    return t.timeout_at if t is not None else None


def _schedule_timer(s: Schedule | None) -> int | None:
    return s.nextRunAt if s is not None else None


class _Tables(QueueTables):
    def __init__(self) -> None:
        super().__init__()
        self.promise_timers = _Timers()
        self.task_timers = _Timers()
        self.schedule_timers = _Timers()
        # resonate:branch -> promise ids (tags never change after insert)
        self.branches: dict[str, set[str]] = {}
        self.promises: dict[str, Promise] = {}
        self.tasks: dict[str, TaskRow] = {}
        # awaited -> {awaiter: ready}; awaiter -> {awaited}
        self.callbacks: dict[str, dict[str, bool]] = {}
        self.awaiting: dict[str, set[str]] = {}
        self.listeners: dict[str, set[str]] = {}
        self.executes: dict[str, Execute] = {}
        self.unblocks: dict[tuple[str, str], None] = {}
        self.schedules: dict[str, Schedule] = {}
        self.statuses: dict[str, str] = {}

    def swap(self, tables: dict[str, object]) -> dict[str, object]:
        """Install ``tables`` (attribute name -> container) and return the previous ones."""
        old = dict(self.__dict__)
        self.__dict__.update(tables)
        return old


def _matches(tags: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(tags.get(k) == v for k, v in wanted.items())


class MemoryTx(MemoryQueues, Tx):
    """One transaction over ``_Tables`` with an undo log."""

    def __init__(self, tables: _Tables, undo: list[Undo]) -> None:
        self._t = tables
        self._undo = undo

    def _tables(self) -> QueueTables:
        return self._t

    def _log(self) -> list[Undo]:
        return self._undo

    # -- promises ---------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None:
        return self._t.promises.get(id)

    def _put_timed(
        self,
        rows: dict[str, R],
        id: str,
        row: R,
        timers: _Timers,
        timer_of: Callable[[R | None], int | None],
    ) -> None:
        old_at = timer_of(rows.get(id))
        _set_key(rows, id, row, self._undo)
        at = timer_of(row)
        if at is not None and at != old_at:
            timers.push(at, id)
        if old_at is not None:
            self._undo.append(lambda: timers.push(old_at, id))

    def insert_promise(self, promise: Promise) -> None:
        t = self._t
        self._put_timed(t.promises, promise.id, promise, t.promise_timers, _promise_timer)
        branch = promise.tags.get(BRANCH)
        if branch is not None:
            members = t.branches.setdefault(branch, set())
            members.add(promise.id)
            self._undo.append(lambda: members.discard(promise.id))

    def update_promise(self, promise: Promise) -> None:
        t = self._t
        self._put_timed(t.promises, promise.id, promise, t.promise_timers, _promise_timer)

    def search_promises(
        self, state: PromiseState | None, tags: Mapping[str, str], page: Page
    ) -> list[Promise]:
        promises, cursor = self._t.promises, page.cursor
        found = (
            promises[id]
            for id in sorted(promises)
            if (cursor is None or id > cursor)
            and (state is None or promises[id].state == state)
            and _matches(promises[id].tags, tags)
        )
        return sized(found, page.limit, page.max_size, promise_size)

    def branch_promises(self, branch: str) -> list[Promise]:
        promises = self._t.promises
        return [promises[id] for id in sorted(self._t.branches.get(branch, ()))]

    def due_promises(self, time: int) -> list[Promise]:
        promises = self._t.promises
        ids = self._t.promise_timers.due(time, lambda id: _promise_timer(promises.get(id)))
        return [promises[id] for id in ids]

    # -- tasks ------------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None:
        return self._t.tasks.get(id)

    def put_task(self, task: TaskRow) -> None:
        self._put_timed(self._t.tasks, task.id, task, self._t.task_timers, _task_timer)

    def due_tasks(self, time: int) -> list[TaskRow]:
        tasks = self._t.tasks
        ids = self._t.task_timers.due(time, lambda id: _task_timer(tasks.get(id)))
        return [tasks[id] for id in ids]

    # -- callbacks --------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        on = self._t.callbacks.get(awaited)
        if on is None:
            on = self._t.callbacks[awaited] = {}
            self._undo.append(lambda: self._t.callbacks.pop(awaited, None))
        if awaiter in on:
            if ready and not on[awaiter]:
                _set_key(on, awaiter, True, self._undo)
            return
        _set_key(on, awaiter, ready, self._undo)
        of = self._t.awaiting.setdefault(awaiter, set())
        of.add(awaited)
        self._undo.append(lambda: of.discard(awaited))

    def callbacks_on(self, awaited: str) -> list[Callback]:
        on = self._t.callbacks.get(awaited, {})
        return [Callback(awaited, w, r) for w, r in sorted(on.items())]

    def mark_ready(self, awaited: str) -> None:
        on = self._t.callbacks.get(awaited)
        if on:
            for awaiter, ready in list(on.items()):
                if not ready:
                    _set_key(on, awaiter, True, self._undo)

    def count_ready(self, awaiter: str) -> int:
        cbs = self._t.callbacks
        return sum(1 for a in self._t.awaiting.get(awaiter, ()) if cbs[a][awaiter])

    def delete_ready(self, awaiter: str) -> None:
        for awaited in list(self._t.awaiting.get(awaiter, ())):
            if self._t.callbacks[awaited][awaiter]:
                self.delete_callback(awaited, awaiter)

    def delete_callbacks_of(self, awaiter: str) -> None:
        for awaited in list(self._t.awaiting.get(awaiter, ())):
            self.delete_callback(awaited, awaiter)

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        on = self._t.callbacks.get(awaited)
        if on is None or awaiter not in on:
            return
        ready = on.pop(awaiter)
        of = self._t.awaiting[awaiter]
        of.discard(awaited)

        def undo() -> None:
            on[awaiter] = ready
            of.add(awaited)

        self._undo.append(undo)

    # -- listeners --------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        on = self._t.listeners.setdefault(promise_id, set())
        if address not in on:
            on.add(address)
            self._undo.append(lambda: on.discard(address))

    def take_listeners(self, promise_id: str) -> list[str]:
        on = self._t.listeners.pop(promise_id, None)
        if not on:
            return []
        self._undo.append(lambda: self._t.listeners.__setitem__(promise_id, on))
        return sorted(on)

    # -- outbox -----------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        _set_key(self._t.executes, task_id, Execute(task_id, version, address), self._undo)

    def put_unblock(self, promise_id: str, address: str) -> None:
        key = (promise_id, address)
        if key not in self._t.unblocks:
            self._t.unblocks[key] = None
            self._undo.append(lambda: self._t.unblocks.pop(key, None))

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        executes = list(self._t.executes.values())[:limit]
        for e in executes:
            old = self._t.executes.pop(e.task_id)
            self._undo.append(lambda old=old: self._t.executes.__setitem__(old.task_id, old))  # type: ignore[misc]
        keys = list(self._t.unblocks)[:limit]
        unblocks: list[tuple[Promise, str]] = []
        for key in keys:
            del self._t.unblocks[key]
            self._undo.append(lambda key=key: self._t.unblocks.__setitem__(key, None))  # type: ignore[misc]
            promise = self._t.promises.get(key[0])
            if promise is not None:
                unblocks.append((promise, key[1]))
        return executes, unblocks

    # -- schedules --------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None:
        return self._t.schedules.get(id)

    def put_schedule(self, schedule: Schedule) -> None:
        t = self._t
        self._put_timed(t.schedules, schedule.id, schedule, t.schedule_timers, _schedule_timer)

    def delete_schedule(self, id: str) -> bool:
        old = self._t.schedules.pop(id, None)
        if old is None:
            return False
        timers = self._t.schedule_timers

        def undo() -> None:
            self._t.schedules[id] = old
            timers.push(old.nextRunAt, id)

        self._undo.append(undo)
        return True

    def search_schedules(self, tags: Mapping[str, str], page: Page) -> list[Schedule]:
        schedules, cursor = self._t.schedules, page.cursor
        found = (
            schedules[id]
            for id in sorted(schedules)
            if (cursor is None or id > cursor) and _matches(schedules[id].promiseTags, tags)
        )
        return sized(found, page.limit, page.max_size, schedule_size)

    def due_schedules(self, time: int) -> list[Schedule]:
        schedules = self._t.schedules
        ids = self._t.schedule_timers.due(time, lambda id: _schedule_timer(schedules.get(id)))
        return [schedules[id] for id in ids]

    # -- whole-store views ------------------------------------------------------------------
    def all_promises(self) -> list[Promise]:
        return [self._t.promises[id] for id in sorted(self._t.promises)]

    def all_tasks(self) -> list[TaskRow]:
        return [self._t.tasks[id] for id in sorted(self._t.tasks)]

    def all_callbacks(self) -> list[Callback]:
        return sorted(
            (
                Callback(awaited, awaiter, ready)
                for awaited, on in self._t.callbacks.items()
                for awaiter, ready in on.items()
            ),
            key=lambda c: (c.awaiter, c.awaited),
        )

    def all_listeners(self) -> list[Listener]:
        return sorted(
            (Listener(p, a) for p, on in self._t.listeners.items() for a in on),
            key=lambda x: (x.promise_id, x.address),
        )

    # -- status records ---------------------------------------------------------------------
    def get_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        statuses = self._t.statuses
        return {id: statuses[id] for id in ids if id in statuses}

    def put_status(self, id: str, record: str) -> None:
        _set_key(self._t.statuses, id, record, self._undo)

    def all_executes(self) -> list[Execute]:
        return [self._t.executes[id] for id in sorted(self._t.executes)]

    def all_unblocks(self) -> list[Listener]:
        return [Listener(p, a) for p, a in sorted(self._t.unblocks)]

    def reset(self) -> None:
        # Swap in empty containers and keep the old ones untouched: earlier undo entries of
        # this transaction refer to those very objects, so restoring them keeps them valid.
        saved = self._t.swap(dict(_Tables().__dict__))
        self._undo.append(lambda: self._t.swap(saved))

    def next_deadline(self) -> int | None:
        t = self._t
        firsts = (
            t.promise_timers.first(lambda id: _promise_timer(t.promises.get(id))),
            t.task_timers.first(lambda id: _task_timer(t.tasks.get(id))),
            t.schedule_timers.first(lambda id: _schedule_timer(t.schedules.get(id))),
            self.first_wake(),
        )
        return min((at for at in firsts if at is not None), default=None)

    def has_outbox(self) -> bool:
        return bool(self._t.executes or self._t.unblocks)


class MemoryStore:
    """A ``Store`` over ``MemoryTx``: serialised by a lock, rolled back when ``op`` raises."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._lock = threading.Lock()

    def run(self, op: Callable[[Tx], T]) -> T:
        with self._lock:
            undo: list[Undo] = []
            try:
                return op(MemoryTx(self._tables, undo))
            except BaseException:
                for u in reversed(undo):
                    u()
                raise

    async def run_async(self, op: Callable[[Tx], T], durable: bool = True) -> T:
        del durable  # nothing is ever on disk
        # Operations are short; only hop to a thread when another thread holds the lock.
        if self._lock.acquire(blocking=False):
            self._lock.release()
            return self.run(op)
        return await asyncio.to_thread(self.run, op)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass
