"""The ``Tx`` protocol: the small synchronous storage seam under the engine.

One engine operation runs against one ``Tx``; the store wraps it in a transaction (SQLite: a
savepoint inside a group-committed batch) and answers only after the commit.  Methods are
row-level and carry no protocol rules: those live in the engine, written once for every store.

Conventions every implementation keeps:

* A promise is stored as its wire record (``Promise``).  A promise has a *promise timeout*
  exactly while it is ``pending`` and carries a ``resonate:target`` tag, so promise timeouts
  are derived (``due_promises``, ``promise_timeouts``), not stored separately.
* A task has at most one timeout (retry, type 0, or lease, type 1) kept on its ``TaskRow``.
  ``pid`` is set only with a lease; ``ttl`` is the ttl stored at the last acquire or create
  (the engine resets it to the retry timeout when a lease lapses).
* A callback is a pair ``(awaited, awaiter)`` with a ``ready`` flag; at most one per pair.
* The outbox holds one execute per task (a newer one replaces it) and one unblock per
  ``(promise, address)``.  An unblock's payload is the promise as it is when read.
* A schedule's timeout is its ``nextRunAt`` (derived).
* Lists come back ordered as documented on each method, so every store answers alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

import msgspec

from sustain.protocol.records import Promise, PromiseState, Schedule, TaskState
from sustain.protocol.versions import pin_of


class Page(msgspec.Struct, frozen=True):
    """Which rows of a search come back: at most ``limit`` with ``id > cursor``, by id; with
    ``max_size``, the answer stops after the first row whose running size (``rows.sized``)
    passes it, reading no further rows, so its size is bounded before its rows are in memory."""

    limit: int
    cursor: str | None = None
    max_size: int | None = None


RETRY: Literal[0] = 0
LEASE: Literal[1] = 1


class TaskRow(msgspec.Struct):
    """A task as stored: its state, version and its single timeout (if any)."""

    id: str
    state: TaskState
    version: int
    timeout_type: Literal[0, 1] | None = None
    timeout_at: int | None = None
    pid: str | None = None
    ttl: int = 30000


class Callback(msgspec.Struct, frozen=True):
    awaited: str
    awaiter: str
    ready: bool = False


class Listener(msgspec.Struct, frozen=True):
    promise_id: str
    address: str


class Execute(msgspec.Struct, frozen=True):
    task_id: str
    version: int
    address: str
    # The (function, version) its promise is pinned to (protocol/versions.py): set by the
    # delivery loop when it claims the execute, never stored.
    pin: tuple[str, int] | None = None


class QueueRow(msgspec.Struct):
    """A queue (docs/queues.md): its limits as created, and the state dispatch keeps on it.

    ``rate`` is kept as written ("100/min"); the engine derives the interval.  ``seq`` numbers
    the entries (FIFO within a priority); ``next_at`` is the earliest time the rate lets the
    next task out; ``wake_at`` is set while waiting tasks wait only for the rate (the timer
    loop comes back then).  ``dispatched`` and ``wait_ms`` are the queue's counters."""

    name: str
    concurrency: int | None = None
    per_key_concurrency: int | None = None
    rate: str | None = None
    dedup: bool = False
    created_at: int = 0
    seq: int = 0
    next_at: int = 0
    wake_at: int | None = None
    dispatched: int = 0
    wait_ms: int = 0


class QueueEntry(msgspec.Struct, frozen=True):
    """A task on a queue: waiting for room (no execute sent) or running (holds a slot from
    its execute until it is fulfilled, suspended, released or its lease lapses)."""

    task_id: str
    queue: str
    key: str
    priority: int
    seq: int
    version: int
    address: str
    since: int
    running: bool = False


class Tx(Protocol):
    """Row-level access to one open transaction."""

    # -- promises -------------------------------------------------------------------------
    def get_promise(self, id: str) -> Promise | None: ...

    def insert_promise(self, promise: Promise) -> None:
        """Insert a promise whose id does not exist yet."""

    def update_promise(self, promise: Promise) -> None:
        """Replace the stored promise with the same id (state, value, settledAt change)."""

    def search_promises(
        self, state: PromiseState | None, tags: Mapping[str, str], page: Page
    ) -> list[Promise]:
        """The ``page`` of promises matching ``state`` and containing every ``tags`` pair,
        ordered by id (byte order)."""

    def branch_promises(self, branch: str) -> list[Promise]:
        """Every promise whose ``resonate:branch`` tag equals ``branch``, ordered by id."""

    def due_promises(self, time: int) -> list[Promise]:
        """Pending promises with a ``resonate:target`` tag and ``timeoutAt <= time``, by id."""

    # -- tasks ----------------------------------------------------------------------------
    def get_task(self, id: str) -> TaskRow | None: ...

    def put_task(self, task: TaskRow) -> None:
        """Insert or replace the task with this id."""

    def due_tasks(self, time: int) -> list[TaskRow]:
        """Tasks with a timeout at or before ``time``, ordered by id."""

    # -- callbacks ------------------------------------------------------------------------
    def add_callback(self, awaited: str, awaiter: str, ready: bool) -> None:
        """Insert the pair; if it exists, keep it and only raise ``ready`` to True if asked."""

    def callbacks_on(self, awaited: str) -> list[Callback]:
        """Every callback whose awaited promise is ``awaited``, ordered by awaiter."""

    def mark_ready(self, awaited: str) -> None:
        """Set ``ready`` on every callback whose awaited promise is ``awaited``."""

    def count_ready(self, awaiter: str) -> int:
        """The number of ready callbacks of ``awaiter`` (the task's ``resumes``)."""

    def delete_ready(self, awaiter: str) -> None:
        """Delete the ready callbacks of ``awaiter``."""

    def delete_callbacks_of(self, awaiter: str) -> None:
        """Delete every callback of ``awaiter``, ready or not."""

    def delete_callback(self, awaited: str, awaiter: str) -> None:
        """Delete the one callback ``(awaited, awaiter)`` if it exists (the engine drops a
        callback whose awaiter is past its deadline when the awaited settles, §0 item 6)."""

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, promise_id: str, address: str) -> None:
        """Insert the pair if absent."""

    def take_listeners(self, promise_id: str) -> list[str]:
        """Delete and return the listener addresses of ``promise_id``, ordered."""

    # -- outbox ---------------------------------------------------------------------------
    def put_execute(self, task_id: str, version: int, address: str) -> None:
        """Insert or replace the execute message of ``task_id``."""

    def put_unblock(self, promise_id: str, address: str) -> None:
        """Insert the unblock message for the pair if absent."""

    def claim_outbox(self, limit: int) -> tuple[list[Execute], list[tuple[Promise, str]]]:
        """Delete and return up to ``limit`` executes and up to ``limit`` unblocks (with the
        promise as it is now).  Delivery is at most once per outbox entry."""

    # -- schedules ------------------------------------------------------------------------
    def get_schedule(self, id: str) -> Schedule | None: ...

    def put_schedule(self, schedule: Schedule) -> None:
        """Insert or replace the schedule with this id."""

    def delete_schedule(self, id: str) -> bool:
        """Delete; True if it existed."""

    def search_schedules(self, tags: Mapping[str, str], page: Page) -> list[Schedule]:
        """The ``page`` of schedules whose ``promiseTags`` contain every ``tags`` pair, by id."""

    def due_schedules(self, time: int) -> list[Schedule]:
        """Schedules with ``nextRunAt <= time``, ordered by id."""

    # -- queues (Sustain's flow control, engine/queues.py) -----------------------------------
    def get_queue(self, name: str) -> QueueRow | None:
        """The queue, locked until the transaction ends where the store locks rows: every
        dispatch of a queue reads it first, so dispatches of one queue are serialized."""

    def put_queue(self, queue: QueueRow) -> None:
        """Insert or replace the queue with this name."""

    def delete_queue(self, name: str) -> bool:
        """Delete the queue (its entries stay: the engine drains them); True if it existed."""

    def all_queues(self) -> list[QueueRow]:
        """Every queue, by name."""

    def due_queues(self, time: int) -> list[QueueRow]:
        """Queues whose ``wake_at`` is at or before ``time``, by name."""

    def get_entry(self, task_id: str) -> QueueEntry | None: ...

    def put_entry(self, entry: QueueEntry) -> None:
        """Insert or replace the entry of ``entry.task_id``."""

    def delete_entry(self, task_id: str) -> None: ...

    def count_running(self, queue: str, key: str | None = None) -> int:
        """Running entries of ``queue`` (of its ``key`` only, when given)."""

    def waiting_entries(self, queue: str, limit: int) -> list[QueueEntry]:
        """Up to ``limit`` waiting entries of ``queue`` by (priority, seq)."""

    def queue_counts(self, queue: str) -> list[tuple[bool, int, int]]:
        """``(running, priority, count)`` of ``queue``'s entries, by running then priority."""

    # -- status records (a Sustain extension, protocol/status.py) --------------------------
    def get_statuses(self, ids: Sequence[str]) -> dict[str, str]:
        """The status records (JSON text, opaque to the store) of those of ``ids`` that
        have one."""

    def put_status(self, id: str, record: str) -> None:
        """Insert or replace the status record of ``id``."""

    # -- whole-store views (debug.snap, debug.reset, the background loops) ------------------
    def all_promises(self) -> list[Promise]:
        """Every promise, by id."""

    def all_tasks(self) -> list[TaskRow]:
        """Every task, by id."""

    def all_callbacks(self) -> list[Callback]:
        """Every callback, by (awaiter, awaited)."""

    def all_listeners(self) -> list[Listener]:
        """Every listener, by (promise id, address)."""

    def all_executes(self) -> list[Execute]:
        """The outbox's executes, by task id."""

    def all_unblocks(self) -> list[Listener]:
        """The outbox's unblocks as (promise id, address) pairs, by promise id then address."""

    def reset(self) -> None:
        """Delete every row of every table."""

    def next_deadline(self) -> int | None:
        """The earliest pending promise timeout (target promises), task timeout, schedule
        ``nextRunAt`` or queue ``wake_at``; None when nothing is due ever.  The timer loop
        sleeps until then."""

    def has_outbox(self) -> bool:
        """True when the outbox holds at least one message."""


def pinned(tx: Tx, execute: Execute) -> Execute:
    """The execute with the version its promise is pinned to, read in the claiming
    transaction (protocol/versions.py), so that a poll stream that does not serve that
    version never gets it.  A push address names one endpoint the caller chose: no pin."""
    if not execute.address.startswith("poll://"):
        return execute
    promise = tx.get_promise(execute.task_id)
    pin = pin_of(promise.tags) if promise is not None else None
    return execute if pin is None else msgspec.structs.replace(execute, pin=pin)
