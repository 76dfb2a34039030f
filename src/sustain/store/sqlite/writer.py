"""The group-commit writer: one thread that owns the SQLite connection.

Theory of operation
-------------------
Callers never touch the connection.  They enqueue ``(op, future)`` and wait on the future.
The writer loops:

1. Block for the first queued op, then take whatever else is already queued (up to
   ``batch_cap``): under load a batch holds about one op per waiting caller.
2. ``BEGIN IMMEDIATE``; run each op inside ``SAVEPOINT op`` ... ``RELEASE op``.  An op that
   raises is rolled back to its savepoint alone; the others in the batch keep their writes.
   (A batch of one skips the savepoint: its failure simply rolls the transaction back.)
3. ``COMMIT`` once.
   Whenever anything is undone (a savepoint rolled back, a transaction lost or not
   committed), the Tx's row cache is dropped (``SqliteTx.forget``).
4. Only now resolve the futures, or, for a durable store, hand them to the ``WalSyncer``
   (sync.py), which resolves them after an fdatasync of the WAL: nothing is
   acknowledged before it is durable, and the writer runs the next batch while the disk
   syncs.  If COMMIT fails, every op of the batch gets a ``CommitError``.
   An op submitted with ``durable=False`` is the exception: it is answered right after the
   COMMIT.  The WAL is append-only, so the next sync (which every durable answer waits
   for) covers its frames too; a process crash loses nothing committed, only a machine
   crash before that sync can.

SQLite may abandon a whole transaction on some errors (disk full, I/O error).  When an op's
failure leaves no transaction open, the ops that ran before it in the batch lost their writes
too; they get a ``CommitError`` and the rest of the batch starts a fresh transaction.

``writable`` is the outcome of the last write: False once a write failed for want of space
or on an I/O error (an op's, or a COMMIT's), True again once a batch that changed rows
committed.  ``SqliteStore.ping`` (``/ready``) reads it, and probes with a write of its own
while it is False, so that readiness returns with the space even when no client writes.

Throughput therefore grows with concurrency while latency at low load stays one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from typing import Any

from sustain.store.errors import CommitError, StoreError, StoreStatementError
from sustain.store.sqlite.sync import WalSyncer
from sustain.store.sqlite.tx import SqliteTx
from sustain.store.sqlite.waiters import Done, Waiter, answered, settle, start

log = logging.getLogger(__name__)

Op = Callable[[SqliteTx], Any]
_Item = tuple[Op, Waiter, bool]  # the op, who waits for it, whether its answer waits for sync


@dataclass
class StoreStats:
    """Counters written by the writer thread only (reads from other threads are racy but
    monotonic, which is all a benchmark or a test needs)."""

    ops: int = 0  # operations run to completion (committed or rolled back alone)
    commits: int = 0  # successful COMMITs (fsyncs are counted by the WalSyncer: <= commits)
    batches: int = 0  # transactions begun
    failed_commits: int = 0
    max_batch: int = 0


class GroupCommitWriter:
    """Runs submitted ops on ``conn`` in group-committed batches on its own thread."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        batch_cap: int = 512,
        on_commit: Callable[[sqlite3.Connection], None] | None = None,
        syncer: WalSyncer | None = None,
    ) -> None:
        self._conn = conn
        self._on_commit = on_commit
        self._syncer = syncer
        self._path = path
        self._tx = SqliteTx(conn)
        # SAVEPOINT/RELEASE run twice per op in a batch: on one cursor, not a new one each.
        self._savepoints = conn.cursor()
        self._cap = batch_cap
        self._queue: SimpleQueue[_Item | None] = SimpleQueue()
        self.stats = StoreStats()
        self.writable = True  # the outcome of the last write (see the module docstring)
        # Daemon: a process that exits without close() must not hang on this thread; nothing
        # acknowledged is lost by that, since acknowledgement follows the commit.
        self._thread = threading.Thread(
            target=self._loop, name=f"sustain-sqlite-writer:{path}", daemon=True
        )
        self._thread.start()

    def submit(self, op: Op, waiter: Waiter, durable: bool = True) -> None:
        if threading.get_ident() == self._thread.ident:
            # The writer would wait for itself forever.
            raise RuntimeError("an operation cannot run another operation on its own store")
        self._queue.put((op, waiter, durable))

    def queued(self) -> int:
        """Operations waiting for the writer (not counting the batch it is running)."""
        return self._queue.qsize()

    def stop(self) -> None:
        """Run everything queued so far, then end the thread."""
        self._queue.put(None)
        self._thread.join()

    # -- the thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stopping = False
            while len(batch) < self._cap:
                try:
                    item = self._queue.get_nowait()
                except Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            try:
                self._run_batch(batch)
            except Exception as exc:  # a bug or a broken connection: fail, never hang callers
                log.exception("writer batch failed", extra={"path": self._path})
                self._abandon(batch, exc)
            if stopping:
                return

    def _run_batch(self, batch: list[_Item]) -> None:
        if self._syncer is not None and self._syncer.failure is not None:
            self._abandon(batch, self._syncer.failure)
            return
        conn = self._conn
        stats = self.stats
        stats.max_batch = max(stats.max_batch, len(batch))
        changes = conn.total_changes  # counts every row written since the connection opened
        savepoints = len(batch) > 1
        ran: list[Done] = []  # answers of the ops run in the open transaction
        early: list[Done] = []  # answers that need no commit (nothing of theirs remains)
        volatile: list[Done] = []  # of ``ran``: answered at COMMIT, not after the sync
        in_tx = False
        for op, waiter, durable in batch:
            if not start(waiter):
                continue  # cancelled while queued: it never runs
            if not in_tx:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    error = StoreError(f"cannot begin on {self._path!r}: {exc}")
                    early.append((waiter, False, error))
                    continue
                stats.batches += 1
                in_tx = True
            if savepoints:
                self._savepoints.execute("SAVEPOINT op")
            try:
                result = op(self._tx)
            # The op's exception belongs to its caller, whatever it is: catching everything
            # here is what keeps one bad op from killing the thread every caller waits on.
            except BaseException as exc:
                stats.ops += 1
                if _out_of_space_or_io(exc):
                    self.writable = False
                if isinstance(exc, sqlite3.OperationalError):
                    # The database's failure, not the op's (a full disk, an I/O error, a
                    # lock wait that timed out): a store error, so that no caller has to
                    # know SQLite's exceptions (errors.py).
                    exc = _statement_error(self._path, exc)
                # The Tx's row cache may hold writes that are being undone.
                self._tx.forget()
                if not self._undo(savepoints):
                    # The whole transaction is gone, with the writes of the ops before it.
                    early += self._failed([*ran, *volatile], exc)
                    ran = []
                    volatile = []
                    in_tx = False
                    early.append((waiter, False, exc))
                elif savepoints:
                    ran.append((waiter, False, exc))
                else:
                    in_tx = False
                    early.append((waiter, False, exc))
                continue
            stats.ops += 1
            if not conn.in_transaction:
                # The op swallowed an error that ended the transaction (disk full, I/O):
                # its writes and those before it in the batch are gone or autocommitted.
                self._tx.forget()
                self.writable = False
                lost = sqlite3.OperationalError("transaction aborted inside an operation")
                early += self._failed([*ran, *volatile, (waiter, True, result)], lost)
                ran = []
                volatile = []
                in_tx = False
                continue
            if savepoints:
                self._savepoints.execute("RELEASE op")
            if durable:
                ran.append((waiter, True, result))
            else:
                volatile.append((waiter, True, result))
        if early:
            settle(early)
        if not in_tx:
            return
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._tx.forget()
            stats.failed_commits += 1
            full = _out_of_space_or_io(exc)
            if full:
                self.writable = False
            # A full disk is an outage, not a bug: one line, no traceback.
            log.error(
                "commit failed: %s",
                exc,
                exc_info=not full,
                extra={"path": self._path, "ops": len(ran)},
            )
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            settle(self._failed([*ran, *volatile], exc))
            return
        stats.commits += 1
        if conn.total_changes != changes:  # rows were written, and are committed
            self.writable = True
        if self._on_commit is not None:
            self._on_commit(conn)
        if self._syncer is None:
            settle([*ran, *volatile] if volatile else ran)
            return
        if volatile:
            settle(volatile)
        if ran:
            self._syncer.committed(ran)  # answered once the WAL is synced

    def _undo(self, savepoint: bool) -> bool:
        """Roll back the failed op; False when SQLite already dropped the transaction."""
        if not self._conn.in_transaction:
            return False
        try:
            if savepoint:
                self._conn.execute("ROLLBACK TO op")
                self._conn.execute("RELEASE op")
            else:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            return False
        return True

    def _abandon(self, batch: list[_Item], cause: BaseException) -> None:
        self._tx.forget()
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rollback failed", extra={"path": self._path})
        error = CommitError(self._path, cause)
        settle([(w, False, error) for _, w, _ in batch if not answered(w)])

    def _failed(self, ran: list[Done], cause: BaseException) -> list[Done]:
        """The answers for ops whose transaction is lost: an op that had failed on its own
        keeps its own error; the others were never durable."""
        error = CommitError(self._path, cause)
        return [(w, False, error if ok else value) for w, ok, value in ran]


def _out_of_space_or_io(exc: BaseException) -> bool:
    """SQLITE_FULL or an SQLITE_IOERR: the file cannot be written now (a full disk), not a
    failure of the op itself."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR)


def _statement_error(path: str, exc: sqlite3.OperationalError) -> StoreStatementError:
    error = StoreStatementError(path, exc)
    error.__cause__ = exc
    return error
