"""The queue part of ``MemoryTx`` (memory.py): the Tx's queue methods over two dicts.

Queues are few and their entries are scanned: the memory store serves tests and
``sustain dev``, where a queue holds tens of tasks, not millions.  Writes go through the
transaction's undo log like every other table's.
"""

from __future__ import annotations

from collections.abc import Callable

from sustain.store.tx import QueueEntry, QueueRow

Undo = Callable[[], object]


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

    def _set(self, d: dict[str, QueueRow] | dict[str, QueueEntry], key: str, value: object) -> None:
        undo = self._log()
        table: dict[str, object] = d  # type: ignore[assignment]
        if key in table:
            old = table[key]
            undo.append(lambda: table.__setitem__(key, old))
        else:
            undo.append(lambda: table.pop(key, None))
        table[key] = value

    def _drop(self, table: dict[str, QueueRow] | dict[str, QueueEntry], key: str) -> bool:
        if key not in table:
            return False
        self._set(table, key, table[key])  # records the undo that puts it back
        del table[key]
        return True

    def get_queue(self, name: str) -> QueueRow | None:
        return self._tables().queues.get(name)

    def put_queue(self, queue: QueueRow) -> None:
        self._set(self._tables().queues, queue.name, queue)

    def delete_queue(self, name: str) -> bool:
        return self._drop(self._tables().queues, name)

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
        self._set(self._tables().entries, entry.task_id, entry)

    def delete_entry(self, task_id: str) -> None:
        self._drop(self._tables().entries, task_id)

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
