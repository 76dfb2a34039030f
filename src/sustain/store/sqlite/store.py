"""``SqliteStore``: the embedded and single-server store on one SQLite file.

Opening takes an exclusive, non-blocking ``flock`` on ``<path>.lock`` (a second process gets
``StoreLockedError`` at once instead of two writers interleaving), opens the connection in
WAL mode, applies the missing schema migrations, and
hands the connection to a ``GroupCommitWriter`` thread (see writer.py), which runs
every operation from then on.

``synchronous="FULL"`` (default): a write is acknowledged only after the WAL is fsynced, so
it survives a power loss.  SQLite's own FULL would fsync inside every COMMIT and stall the
writer; the connection runs at SQLite's NORMAL and the ``WalSyncer`` thread fsyncs the WAL
after each commit before answering (sync.py), the same guarantee with the fsync of
one batch overlapping the SQL of the next.  ``"NORMAL"`` is the explicit trade-off: no fsync
before answering, still safe against ``kill -9`` of the process, but the last commits may be
lost if the machine itself goes down.

``:memory:`` is a private in-process database: no lock file, no WAL, nothing durable.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar, cast

from sustain.store.errors import StoreClosedError, StoreError, StoreLockedError, StoreOpenError
from sustain.store.sqlite.checkpoint import Checkpointer
from sustain.store.sqlite.migrations import migrate
from sustain.store.sqlite.sync import WalSyncer
from sustain.store.sqlite.tx import SqliteTx
from sustain.store.sqlite.waiters import AsyncWaiter, Waiter
from sustain.store.sqlite.writer import GroupCommitWriter, StoreStats
from sustain.store.tx import Tx

T = TypeVar("T")

MEMORY = ":memory:"
# Free space the file system needs before a store whose writes failed for want of it is
# ready again (``ping``): room for many batches, so that readiness does not flap.
READY_FREE_BYTES = 1 << 20
SYNCHRONOUS = ("FULL", "NORMAL")
_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA foreign_keys = OFF",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA cache_size = -32768",  # 32 MiB of page cache: the working set of a busy server
    "PRAGMA journal_size_limit = 67108864",  # truncate the WAL back to 64 MiB after checkpoints
)


def _lock(path: str) -> int:
    fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StoreLockedError(path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: the writer issues BEGIN/SAVEPOINT/COMMIT itself.
    # check_same_thread=False: opened here, then used only by the writer thread.
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, cached_statements=256
    )
    try:
        if path != MEMORY:
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot enable WAL on {path!r} (got {mode})")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        # FULL's fsync is done by the WalSyncer (see the module docstring).
        conn.execute("PRAGMA synchronous = NORMAL")
        for pragma in _PRAGMAS:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteStore:
    """A ``Store`` on the SQLite database at ``path`` (or ``":memory:"``)."""

    def __init__(self, path: str, synchronous: str = "FULL") -> None:
        level = synchronous.upper()
        if level not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS}, not {synchronous!r}")
        self.path = path
        self.synchronous = level
        self.applied_migrations: list[int] = []
        self._lock_fd = None if path == MEMORY else _lock(path)
        try:
            conn = _connect(path)
            try:
                self.applied_migrations = migrate(conn, path)
                # The writer never checkpoints (wal_autocheckpoint = 0 in _connect); a file
                # database gets a checkpoint thread instead (checkpoint.py).
                checkpointer = None if path == MEMORY else Checkpointer(os.path.abspath(path))
            except BaseException:
                conn.close()
                raise
        except BaseException as exc:
            if self._lock_fd is not None:
                _unlock(self._lock_fd)
            if isinstance(exc, sqlite3.Error):
                # Not a database, unreadable, a failed migration: callers catch StoreError.
                raise StoreOpenError(path, exc) from exc
            raise
        self._conn = conn
        self._closed = False
        self._submit_lock = threading.Lock()
        self._checkpointer = checkpointer
        durable = path != MEMORY and level == "FULL"
        # Absolute: these threads open files later, and the process may chdir meanwhile.
        self._syncer = WalSyncer(os.path.abspath(path)) if durable else None
        self._writer = GroupCommitWriter(
            conn,
            path,
            on_commit=None if checkpointer is None else checkpointer.after_commit,
            syncer=self._syncer,
        )
        # Runs once: from close(), or at interpreter exit for a store never closed (while
        # daemon threads still run, so the queue drains and the lock is released cleanly).
        self._shutdown = weakref.finalize(
            self, _shutdown, self._writer, self._syncer, checkpointer, conn, self._lock_fd
        )

    @property
    def stats(self) -> StoreStats:
        """Counters of the writer: ops, commits (one fsync each under FULL), batches."""
        return self._writer.stats

    @property
    def syncs(self) -> int:
        """fdatasync calls of the WAL made before answering (FULL only)."""
        return 0 if self._syncer is None else self._syncer.syncs

    @property
    def checkpoints(self) -> int:
        """WAL checkpoints run by the checkpoint thread so far."""
        return 0 if self._checkpointer is None else self._checkpointer.checkpoints

    def queued(self) -> int:
        """Operations waiting for the writer: a gauge for metrics and for tests that need a
        batch to form."""
        return self._writer.queued()

    def submit(self, op: Callable[[Tx], T]) -> Future[T]:
        """Queue ``op`` and return at once; the future resolves after its batch commits."""
        future: Future[T] = Future()
        self._submit(op, future)
        return future

    def _submit(self, op: Callable[[SqliteTx], Any], waiter: Waiter, durable: bool = True) -> None:
        # The lock orders submissions against close(): nothing is queued behind the stop mark.
        with self._submit_lock:
            if self._closed:
                raise StoreClosedError(self.path)
            self._writer.submit(op, waiter, durable)

    def run(self, op: Callable[[Tx], T]) -> T:
        """Run ``op`` in a transaction; return its result once the batch is committed."""
        return self.submit(op).result()

    async def run_async(self, op: Callable[[Tx], T], durable: bool = True) -> T:
        """``run`` for coroutines: awaits the commit without blocking the event loop.
        Cancelled while still queued, the op never runs.  ``durable=False`` answers right
        after the COMMIT instead of after the WAL's fdatasync (see ``Store.run_async``)."""
        waiter = AsyncWaiter(asyncio.get_running_loop())
        self._submit(op, waiter, durable)
        return cast(T, await waiter.future)

    def ping(self, timeout: float = 5.0) -> bool:
        """True when the writer answers within ``timeout`` s (its queue moves) and the store
        can write (``/ready``).

        While the last write succeeded, ``SELECT 1``.  After one failed for want of space or
        on an I/O error, not ready until the file system has ``READY_FREE_BYTES`` free and a
        write of ping's own commits (``probe_write``): the probe alone is too small to tell
        (one page fits in the WAL's frames that a checkpoint freed while the writes of a real
        operation do not), the free space alone misses I/O errors.  Never again after an
        fdatasync of the WAL failed: the writer refuses every write from then on
        (sync.py)."""
        if self._syncer is not None and self._syncer.failure is not None:
            return False
        probe = SqliteTx.select_one
        if not self._writer.writable:
            if self._free_bytes() < READY_FREE_BYTES:
                return False
            probe = SqliteTx.probe_write
        try:
            future: Future[bool] = Future()
            self._submit(probe, future)
            return future.result(timeout)
        except (StoreError, sqlite3.Error, TimeoutError):
            return False

    def _free_bytes(self) -> int:
        try:
            fs = os.statvfs(os.path.dirname(os.path.abspath(self.path)))
        except OSError:
            return 0
        return fs.f_bavail * fs.f_frsize

    def close(self) -> None:
        """Run the ops already queued, stop the writer, close the file and release the lock."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
        self._shutdown()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shutdown(
    writer: GroupCommitWriter,
    syncer: WalSyncer | None,
    checkpointer: Checkpointer | None,
    conn: sqlite3.Connection,
    lock_fd: int | None,
) -> None:
    # Order matters: the writer commits what is queued, the syncer makes it durable and
    # answers, and only then do the connections close and the lock go.
    writer.stop()
    if syncer is not None:
        syncer.stop()
    if checkpointer is not None:
        checkpointer.stop()
    conn.close()
    if lock_fd is not None:
        _unlock(lock_fd)
