"""WAL checkpoints off the writer's path.

SQLite's automatic checkpoint runs inside the COMMIT that crosses the WAL size threshold, so
one unlucky batch of callers waits for a checkpoint (page copies and, with synchronous=FULL,
an fsync of the database file).  The writer connection instead disables auto-checkpointing
and this thread, on its own connection, runs ``PRAGMA wal_checkpoint(PASSIVE)`` shortly after
commits happen: a passive checkpoint never blocks the writer, and it copies everything
committed so far because the writer is the only other connection.  sqlite3 releases the GIL
while the checkpoint works, so it overlaps with the writer and the event loop.

Under sustained load a checkpoint from this thread rarely catches up with the writer
exactly, and SQLite only rewinds the WAL to its start when everything in it was copied, so
the WAL would grow for as long as the load lasts.  When a checkpoint here finds more than
``behind_frames`` frames in the WAL, the writer is asked to run one passive checkpoint itself
between two batches: with no write in flight it completes, and the next transaction rewinds
the WAL.  Most frames were copied by this thread already, so that pause is short.

Checkpoints are safe at any moment (a crash mid-checkpoint is recovered from the WAL).
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints the WAL of ``path`` at most every ``interval`` seconds while writes happen."""

    def __init__(self, path: str, interval: float = 0.25, behind_frames: int = 4096) -> None:
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA busy_timeout = 5000")
        self._interval = interval
        self._behind_frames = behind_frames
        # Set by this thread, cleared by the writer: a plain attribute is enough, a missed or
        # doubled writer checkpoint is harmless.
        self.behind = False
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self.checkpoints = 0
        self._thread = threading.Thread(
            target=self._loop, name=f"sustain-sqlite-checkpoint:{path}", daemon=True
        )
        self._thread.start()

    def after_commit(self, conn: sqlite3.Connection) -> None:
        """Called by the writer, on its thread and connection, after each commit."""
        self._dirty.set()
        if self.behind:
            self.behind = False
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                log.warning("writer wal checkpoint failed", exc_info=True)

    def stop(self) -> None:
        self._stopping.set()
        self._dirty.set()
        self._thread.join()
        self._conn.close()

    def _loop(self) -> None:
        while True:
            self._dirty.wait()
            if self._stopping.is_set():
                return
            # Let commits accumulate: one checkpoint per interval covers all of them.
            if self._stopping.wait(self._interval):
                return
            self._dirty.clear()
            try:
                _, frames, _ = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error:
                # The next commit retries; the WAL only grows meanwhile.
                log.warning("wal checkpoint failed", exc_info=True)
                continue
            self.checkpoints += 1
            if frames > self._behind_frames:
                self.behind = True  # the WAL is long: have the writer finish and rewind it
