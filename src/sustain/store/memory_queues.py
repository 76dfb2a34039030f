"""The queue part of ``MemoryTx`` (memory.py): the Tx's queue methods over two dicts.

Queues are few and their entries are scanned: the memory store serves tests and
``sustain dev``, where a queue holds tens of tasks, not millions.  Writes go through the
transaction's undo log like every other table's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sustain.store.tx import QueueEntry, QueueRow

T = TypeVar("T")
Undo = Callable[[], object]


def set_key(d: dict[str, T], key: str, value: T, undo: list[Undo]) -> None:
    """``d[key] = value``, with the closure that undoes it on ``undo`` (every table's write,
    memory.py's too)."""
    if key in d:
        old = d[key]
        undo.append(lambda: d.__setitem__(key, old))
    else:
        undo.append(lambda: d.pop(key, None))
    d[key] = value


def drop_key(d: dict[str, T], key: str, undo: list[Undo]) -> bool:
    """``del d[key]`` if present, undoably; True if it was."""
    if key not in d:
        return False
    old = d.pop(key)
    undo.append(lambda: d.__setitem__(key, old))
    return True


class QueueTables:
    """The two queue tables (mixed into memory.py's ``_Tables``)."""

    def __init__(self) -> None:
        self.queues: dict[str, QueueRow] = {}
        self.entries: dict[str, QueueEntry] = {}


class MemoryQueues:
    """The queue methods of the Tx; ``_tables`` and ``_log`` are the transaction's."""

    def _tables(self) -> QueueTables:
        raise NotImplementedError

    def _log(self) -> list[Undo]:
        raise NotImplementedError

    def get_queue(self, name: str) -> QueueRow | None:
        return self._tables().queues.get(name)

    def put_queue(self, queue: QueueRow) -> None:
        set_key(self._tables().queues, queue.name, queue, self._log())

    def delete_queue(self, name: str) -> bool:
        return drop_key(self._tables().queues, name, self._log())

    def all_queues(self) -> list[QueueRow]:
        queues = self._tables().queues
        return [queues[name] for name in sorted(queues)]

    def due_queues(self, time: int) -> list[QueueRow]:
        return [q for q in self.all_queues() if q.wake_at is not None and q.wake_at <= time]

    def first_wake(self) -> int | None:
        return min(
            (q.wake_at for q in self._tables().queues.values() if q.wake_at is not None),
            default=None,
        )

    def get_entry(self, task_id: str) -> QueueEntry | None:
        return self._tables().entries.get(task_id)

    def put_entry(self, entry: QueueEntry) -> None:
        set_key(self._tables().entries, entry.task_id, entry, self._log())

    def delete_entry(self, task_id: str) -> None:
        drop_key(self._tables().entries, task_id, self._log())

    def count_running(self, queue: str, key: str | None = None) -> int:
        return sum(
            1
            for e in self._tables().entries.values()
            if e.queue == queue and e.running and (key is None or e.key == key)
        )

    def waiting_entries(self, queue: str, limit: int) -> list[QueueEntry]:
        waiting = [e for e in self._tables().entries.values() if e.queue == queue and not e.running]
        waiting.sort(key=lambda e: (e.priority, e.seq))
        return waiting[:limit]

    def queue_counts(self, queue: str) -> list[tuple[bool, int, int]]:
        counts: dict[tuple[bool, int], int] = {}
        for e in self._tables().entries.values():
            if e.queue == queue:
                counts[e.running, e.priority] = counts.get((e.running, e.priority), 0) + 1
        return [(running, priority, n) for (running, priority), n in sorted(counts.items())]
