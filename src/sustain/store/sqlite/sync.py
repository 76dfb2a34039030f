"""Durable acknowledgement: fsync the WAL off the writer thread, then answer.

Theory of operation
-------------------
With SQLite's own ``synchronous=FULL`` every COMMIT waits for an fsync of the WAL, and while
it waits the writer runs nothing: a batch's SQL and the previous batch's fsync never overlap.
Instead, ``SqliteStore(synchronous="FULL")`` runs the connection at ``synchronous=NORMAL``
(COMMIT appends the batch's frames to the WAL without syncing) and hands the committed batch
to this thread, which calls ``fdatasync`` on the WAL file and only then resolves the batch's
futures.  One fdatasync covers every batch committed before it started, so under load the
writer keeps running batches while the disk syncs the previous ones.

The guarantee is the same as FULL's: no operation is acknowledged before the WAL frames of
its commit are on disk.  That includes reads: an op that read another op's committed but not
yet synced rows is acknowledged only after a sync that started after its own commit, which
covers those rows too (the WAL is append-only between checkpoints).  The WAL file keeps its
inode while the store is open (the writer's connection holds it; only the last close deletes
it), so syncing our own descriptor of it syncs SQLite's file.  The directory is synced once,
so the WAL's (and a new database's) directory entries are durable as well.

If fdatasync fails, what reached the disk is unknown: the batches waiting fail with
``CommitError`` and the store refuses all further work (``failure`` is set), as PostgreSQL
does after a failed fsync.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue

from sustain.store.errors import CommitError
from sustain.store.sqlite.waiters import Done, settle

log = logging.getLogger(__name__)


class WalSyncer:
    """Resolves committed batches after an fdatasync of ``<path>-wal``."""

    def __init__(self, path: str, on_sync: Callable[[], None] | None = None) -> None:
        self._path = path
        self._wal = path + "-wal"
        self._fd: int | None = None
        self._on_sync = on_sync
        # A SimpleQueue (C) rather than a Condition (Python): the writer hands over every
        # committed batch, and a Condition's notify cost it several microseconds each time.
        # None is the stop mark.
        self._queue: SimpleQueue[list[Done] | None] = SimpleQueue()
        self.failure: BaseException | None = None
        self.syncs = 0
        self._thread = threading.Thread(
            target=self._loop, name=f"sustain-sqlite-sync:{path}", daemon=True
        )
        self._thread.start()

    def committed(self, done: list[Done]) -> None:
        """Called by the writer right after a successful COMMIT of these ops."""
        self._queue.put(done)

    def stop(self) -> None:
        """Sync and answer everything committed so far, then end the thread."""
        self._queue.put(None)
        self._thread.join()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _take(self) -> tuple[list[Done], bool]:
        """Every batch committed so far (waiting for the first), and whether stop() was
        called: one fdatasync covers them all."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = list(first)
        while True:
            try:
                more = self._queue.get_nowait()
            except Empty:
                return batch, False
            if more is None:
                return batch, True
            batch.extend(more)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            batch, stopping = self._take()
            if not batch:
                continue
            if self.failure is not None:
                self._fail(batch, self.failure)
                continue
            try:
                self._sync()
            except OSError as exc:
                log.critical("fdatasync of the WAL failed", extra={"path": self._path})
                self.failure = exc
                self._fail(batch, exc)
                continue
            self.syncs += 1
            if self._on_sync is not None:
                self._on_sync()
            settle(batch)

    def _sync(self) -> None:
        if self._fd is None:
            # Opened on first use: the WAL exists once anything was committed.
            self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
            directory = os.open(os.path.dirname(os.path.abspath(self._wal)), os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        os.fdatasync(self._fd)

    def _fail(self, batch: list[Done], cause: BaseException) -> None:
        settle([(w, False, CommitError(self._path, cause) if ok else v) for w, ok, v in batch])
