"""A full disk under the SQLite server: the database lives on a small tmpfs, which a filler
file fills up.  Writes then answer 503 (the client retries), reads keep working, ``/ready``
answers 503; once the filler is gone, writes succeed again and ``/ready`` is 200; every write
acknowledged before, during and after is in the file (read back with sqlite3 after a kill -9
of the server).

Mounting needs root (the suite runs as root in CI and on the dev machines); without it the
test fails with the reason, like a missing PostgreSQL: the fault is part of the product."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.load import Load, create, sqlite_ids
from tests.servers import ServerProcess, acked_before_kill_9, start_server, unique

SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a {SIZE} tmpfs for the disk-full test: {mounted.stderr}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the file system has no byte left."""
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(chunk)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
        with contextlib.suppress(OSError):
            while True:  # the last bytes, past the last whole chunk
                out.write(b"\0" * 512)


def write(server: ServerProcess) -> tuple[int, str, Any]:
    pid = unique("full")
    answer = server.client.post("/", content=create(pid, 0))
    promise = answer.json()["data"]["promise"] if answer.status_code == 200 else None
    return answer.status_code, pid, promise


def ready(server: ServerProcess) -> int:
    return httpx.get(f"{server.url}/ready", timeout=30).status_code


def test_a_full_disk_answers_503_keeps_reads_and_loses_no_acknowledged_write(
    tmp_path: Path, small_disk: Path
) -> None:
    db = small_disk / "sustain.db"
    server = start_server(tmp_path, db=db)
    acked: dict[str, Any] = {}
    try:
        # Some writes on a disk with room, under a concurrent load.
        load = Load()
        stop = threading.Event()
        loader = threading.Thread(target=lambda: asyncio.run(load(server, acked, stop, 4)))
        loader.start()
        deadline = time.monotonic() + 30
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        filler = small_disk / "filler"
        fill(filler)
        # The WAL may still have room for a few writes: the disk is full once one fails.
        deadline = time.monotonic() + 30
        while load.statuses[503] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        loader.join(timeout=60)
        assert load.statuses[503] > 0, load.statuses
        assert set(load.statuses) <= {200, 503}, (load.statuses, load.bodies[:3])

        # Until the WAL's own room is used up too: a checkpoint lets the next writes reuse
        # the file's frames from the start, so a few may still succeed.
        failed = 0
        for _ in range(500):
            status, pid, promise = write(server)
            assert status in (200, 503), status
            if status == 200:
                acked[pid] = promise
            failed = failed + 1 if status == 503 else 0
            if failed == 5:
                break
        assert failed == 5, "writes kept succeeding on a full disk"
        some = next(iter(acked))
        assert server.ok("promise.get", {"id": some}) == {"promise": acked[some]}
        assert ready(server) == 503

        filler.unlink()
        status, pid, promise = write(server)
        assert status == 200, status
        acked[pid] = promise
        assert ready(server) == 200
        assert "Internal error" not in server.output()

        more = acked_before_kill_9(server, 4, 50, Load())
    finally:
        server.stop()
    acked.update(more)
    assert sqlite_ids(db, list(acked)) == set(acked)
