"""SQLite-only behaviour: durability across reopen, the file lock, migrations, options."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from sustain.protocol.records import Value
from sustain.store.errors import SchemaVersionError, StoreClosedError, StoreLockedError
from sustain.store.sql.migrations import load_migrations
from sustain.store.sqlite import SqliteStore
from sustain.store.tx import RETRY, TaskRow, Tx
from tests.store.store_builders import TARGET, promise


def open_in_child(path: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        """
        import sys
        from sustain.store.errors import StoreLockedError
        from sustain.store.sqlite import SqliteStore
        try:
            store = SqliteStore(sys.argv[1])
        except StoreLockedError as exc:
            print(f"locked: {exc}")
            sys.exit(3)
        print("opened", store.run(lambda tx: [p.id for p in tx.all_promises()]))
        store.close()
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script, path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_writes_survive_close_and_reopen(db_path: str) -> None:
    odd = promise(
        "日本.😀 x",
        tags={TARGET: "poll://any@g", "k": ""},
        param=Value(headers={}, data=""),
        value=Value(),
    )
    with SqliteStore(db_path) as store:

        def fill(tx: Tx) -> None:
            tx.insert_promise(odd)
            tx.put_task(TaskRow(odd.id, "pending", 0, RETRY, 77))
            tx.add_callback(odd.id, "w", True)
            tx.put_execute(odd.id, 0, "poll://any@g")

        store.run(fill)
    with SqliteStore(db_path) as store:
        assert store.run(lambda tx: tx.get_promise(odd.id)) == odd
        assert store.run(lambda tx: tx.get_task(odd.id)) == TaskRow(odd.id, "pending", 0, RETRY, 77)
        assert store.run(lambda tx: (tx.count_ready("w"), tx.next_deadline())) == (1, 77)
        assert store.run(lambda tx: [e.task_id for e in tx.all_executes()]) == [odd.id]


def test_second_process_gets_a_clear_lock_error(db_path: str) -> None:
    store = SqliteStore(db_path)
    try:
        store.run(lambda tx: tx.insert_promise(promise("p")))
        child = open_in_child(db_path)
        assert child.returncode == 3, child.stderr
        assert "locked:" in child.stdout
        assert db_path in child.stdout
        assert "already open in another process" in child.stdout
    finally:
        store.close()
    # Released on close: the next process opens it and sees the data.
    child = open_in_child(db_path)
    assert child.returncode == 0, child.stderr
    assert "opened ['p']" in child.stdout


def test_second_open_in_the_same_process_is_refused_too(db_path: str) -> None:
    with SqliteStore(db_path):
        with pytest.raises(StoreLockedError) as info:
            SqliteStore(db_path)
        assert info.value.path == db_path
    SqliteStore(db_path).close()


def test_migrations_apply_once_and_reopen_is_idempotent(db_path: str) -> None:
    versions = [m.version for m in load_migrations()]
    assert versions[0] == 1
    assert versions == sorted(versions)
    first = SqliteStore(db_path)
    assert first.applied_migrations == versions
    first.close()
    again = SqliteStore(db_path)
    assert again.applied_migrations == []
    again.close()
    with sqlite3.connect(db_path) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [v for v, _ in rows] == versions
    assert rows[0][1] == "init"


def test_a_newer_schema_is_refused(db_path: str) -> None:
    SqliteStore(db_path).close()
    with sqlite3.connect(db_path) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'x', '')"
        )
    conn.close()
    with pytest.raises(SchemaVersionError) as info:
        SqliteStore(db_path)
    assert info.value.versions == [9999]
    # The failed open released its lock.
    with sqlite3.connect(db_path) as conn:
        conn.execute("DELETE FROM schema_migrations WHERE version = 9999")
    conn.close()
    SqliteStore(db_path).close()


def test_wal_and_synchronous_settings(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        assert store.synchronous == "FULL"
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    with SqliteStore(db_path, synchronous="normal") as store:
        assert store.synchronous == "NORMAL"
        store.run(lambda tx: tx.insert_promise(promise("p")))
    with pytest.raises(ValueError, match="synchronous"):
        SqliteStore(db_path, synchronous="OFF")


def test_memory_database_needs_no_lock_file(tmp_path: Path) -> None:
    a = SqliteStore(":memory:")
    b = SqliteStore(":memory:")
    try:
        a.run(lambda tx: tx.insert_promise(promise("p")))
        assert a.run(lambda tx: tx.get_promise("p")) == promise("p")
        assert b.run(lambda tx: tx.get_promise("p")) is None
    finally:
        a.close()
        b.close()
    assert not list(tmp_path.iterdir())


def test_closed_store_refuses_work_and_close_is_idempotent(db_path: str) -> None:
    store = SqliteStore(db_path)
    store.close()
    store.close()
    assert store.ping() is False
    with pytest.raises(StoreClosedError):
        store.run(lambda tx: tx.get_promise("p"))


def test_duplicate_insert_fails_that_op_only(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        store.run(lambda tx: tx.insert_promise(promise("p")))
        with pytest.raises(sqlite3.IntegrityError):
            store.run(lambda tx: tx.insert_promise(promise("p", timeout_at=5)))
        assert store.run(lambda tx: tx.get_promise("p")) == promise("p")


def test_wal_is_checkpointed_off_the_writer(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        for i in range(50):
            store.run(lambda tx, i=i: tx.insert_promise(promise(f"p{i}")))
        done = threading.Event()
        while store.checkpoints == 0:  # a condition the checkpoint thread makes true
            done.wait(0.01)
        assert store.stats.commits >= 50
    # The checkpointed database reads back whole without its WAL.
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM promises").fetchone()[0] == 50
    conn.close()


def test_a_store_left_open_drains_its_queue_at_exit(db_path: str) -> None:
    script = textwrap.dedent(
        """
        import sys
        from sustain.protocol.records import Promise, Value
        from sustain.store.sqlite import SqliteStore

        store = SqliteStore(sys.argv[1])
        for i in range(100):
            p = Promise(id=f"p{i:03}", state="pending", param=Value(), value=Value(), tags={},
                        timeoutAt=1, createdAt=0)
            store.submit(lambda tx, p=p: tx.insert_promise(p))
        # No close(), no waiting: the interpreter exits with the ops still queued.
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script, db_path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    with SqliteStore(db_path) as store:
        assert store.run(lambda tx: len(tx.all_promises())) == 100


def wal_frames(db_path: str) -> int:
    """mxFrame from the WAL-index header (the -shm file, native byte order, offset 16): the
    WAL's length in frames, read without checkpointing anything."""
    with open(db_path + "-shm", "rb") as shm:
        header = shm.read(48)
    return int.from_bytes(header[16:20], sys.byteorder)


def test_a_long_wal_is_rewound_by_the_writer(db_path: str) -> None:
    with SqliteStore(db_path) as store:
        checkpointer = store._checkpointer
        assert checkpointer is not None
        checkpointer.stop()  # no background checkpoints: the WAL only grows
        for i in range(100):
            store.run(lambda tx, i=i: tx.insert_promise(promise(f"p{i:03}", tags={"i": str(i)})))
        long = wal_frames(db_path)
        assert long >= 100
        # What the checkpoint thread concludes when it finds the WAL longer than its bound.
        checkpointer.behind = True
        store.run(lambda tx: tx.insert_promise(promise("x")))  # then the writer checkpoints
        store.run(lambda tx: tx.insert_promise(promise("y")))  # and this commit rewinds
        assert wal_frames(db_path) < 10 < long
        assert store.run(lambda tx: len(tx.all_promises())) == 102
