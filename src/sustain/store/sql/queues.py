"""The queue part of the ``Tx`` (store/tx.py, engine/queues.py) for both SQL stores.

Queues are few and their statements rare next to the hot path's, so both stores send the same
text: statements are written with ``:name`` parameters and rewritten once for the store's
driver (``Dialect.param``).  The queue's definition and counters are one JSON column (the
``QueueRow``), read and written whole; ``wake_at`` is its own column for the timer loop.
A store locks what it reads to decide (``_lock``: PostgreSQL's ``FOR UPDATE``, nothing on
SQLite, whose single writer already serializes every transaction).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any, ClassVar

import msgspec

from sustain.store.sql.search import Dialect
from sustain.store.tx import QueueEntry, QueueRow

Row = tuple[Any, ...]

_E_COLS = "task_id, queue, key, priority, seq, version, address, since, running"
Q_GET = "SELECT data FROM queues WHERE name = :name"
Q_PUT = (
    "INSERT INTO queues (name, wake_at, data) VALUES (:name, :wake_at, :data)"
    " ON CONFLICT (name) DO UPDATE SET wake_at = excluded.wake_at, data = excluded.data"
)
Q_DELETE = "DELETE FROM queues WHERE name = :name RETURNING name"
Q_ALL = "SELECT data FROM queues ORDER BY name"
Q_DUE = "SELECT data FROM queues WHERE wake_at <= :time ORDER BY name"
E_GET = f"SELECT {_E_COLS} FROM queue_entries WHERE task_id = :task_id"
E_PUT = (
    f"INSERT INTO queue_entries ({_E_COLS}) VALUES (:task_id, :queue, :key, :priority, :seq,"
    " :version, :address, :since, :running) ON CONFLICT (task_id) DO UPDATE SET"
    " queue = excluded.queue, key = excluded.key, priority = excluded.priority,"
    " seq = excluded.seq, version = excluded.version, address = excluded.address,"
    " since = excluded.since, running = excluded.running"
)
E_DELETE = "DELETE FROM queue_entries WHERE task_id = :task_id"
E_RUNNING = "SELECT count(*) FROM queue_entries WHERE queue = :queue AND running = 1"
E_RUNNING_KEY = (
    "SELECT count(*) FROM queue_entries WHERE queue = :queue AND running = 1 AND key = :key"
)
E_WAITING = (
    f"SELECT {_E_COLS} FROM queue_entries WHERE queue = :queue AND running = 0"
    " ORDER BY priority, seq LIMIT :limit"
)
E_COUNTS = (
    "SELECT running, priority, count(*) FROM queue_entries WHERE queue = :queue"
    " GROUP BY running, priority ORDER BY running, priority"
)

_PARAM = re.compile(r"(?<!:):([a-z_]+)")
_ROW = msgspec.json.Decoder(QueueRow)
_encode = msgspec.json.Encoder().encode


@lru_cache(maxsize=64)
def _for(param: str, query: str) -> str:
    """``query`` with its ``:name`` parameters written the driver's way."""
    return _PARAM.sub(lambda m: param.format(m.group(1)), query)


def _entry(r: Row) -> QueueEntry:
    task_id, queue, key, priority, seq, version, address, since, running = r
    return QueueEntry(
        task_id, queue, key, int(priority), int(seq), int(version), address, int(since),
        bool(running),
    )  # fmt: skip


class SqlQueues:
    """The queue methods of the Tx over a store's ``_rows`` and ``_write`` hooks."""

    __slots__ = ()
    dialect: ClassVar[Dialect]
    _lock: ClassVar[str] = ""
    _claim: ClassVar[str] = ""  # background claims: PostgreSQL's FOR UPDATE SKIP LOCKED

    def _rows(self, query: str, params: Any = ()) -> Iterable[Row]:
        raise NotImplementedError

    def _write(self, query: str, params: Any) -> None:
        raise NotImplementedError

    def _q(self, query: str, **params: Any) -> list[Row]:
        return list(self._rows(_for(self.dialect.param, query), params))

    def get_queue(self, name: str) -> QueueRow | None:
        found = self._q(Q_GET + self._lock, name=name)
        return _ROW.decode(found[0][0]) if found else None

    def put_queue(self, queue: QueueRow) -> None:
        self._write(
            _for(self.dialect.param, Q_PUT),
            {"name": queue.name, "wake_at": queue.wake_at, "data": _encode(queue).decode()},
        )

    def delete_queue(self, name: str) -> bool:
        return bool(self._q(Q_DELETE, name=name))

    def all_queues(self) -> list[QueueRow]:
        return [_ROW.decode(r[0]) for r in self._q(Q_ALL)]

    def due_queues(self, time: int) -> list[QueueRow]:
        return [_ROW.decode(r[0]) for r in self._q(Q_DUE + self._claim, time=time)]

    def get_entry(self, task_id: str) -> QueueEntry | None:
        found = self._q(E_GET, task_id=task_id)
        return _entry(found[0]) if found else None

    def put_entry(self, entry: QueueEntry) -> None:
        params = msgspec.structs.asdict(entry)
        params["running"] = int(entry.running)
        self._write(_for(self.dialect.param, E_PUT), params)

    def delete_entry(self, task_id: str) -> None:
        self._write(_for(self.dialect.param, E_DELETE), {"task_id": task_id})

    def count_running(self, queue: str, key: str | None = None) -> int:
        if key is None:
            return int(self._q(E_RUNNING, queue=queue)[0][0])
        return int(self._q(E_RUNNING_KEY, queue=queue, key=key)[0][0])

    def waiting_entries(self, queue: str, limit: int) -> list[QueueEntry]:
        return [_entry(r) for r in self._q(E_WAITING, queue=queue, limit=limit)]

    def queue_counts(self, queue: str) -> list[tuple[bool, int, int]]:
        return [(bool(r), int(p), int(n)) for r, p, n in self._q(E_COUNTS, queue=queue)]
