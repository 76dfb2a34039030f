"""``sustain worker``'s default pid: a per-host slot held by a lock for the process's life."""

from __future__ import annotations

import socket
from pathlib import Path

from sustain.cli import worker


def test_workers_of_a_group_get_distinct_slots_and_a_freed_slot_is_taken_again(
    tmp_path: Path,
) -> None:
    host = socket.gethostname()
    before = len(worker._slot_files)
    try:
        first = worker.slot_pid("g", tmp_path)
        second = worker.slot_pid("g", tmp_path)
        other = worker.slot_pid("h", tmp_path)  # another group counts its own slots
        assert (first, second, other) == (f"{host}-g-0", f"{host}-g-1", f"{host}-h-0")
        worker._slot_files.pop(before).close()  # the holder of slot 0 dies: its lock goes
        assert worker.slot_pid("g", tmp_path) == f"{host}-g-0"
    finally:
        while len(worker._slot_files) > before:
            worker._slot_files.pop().close()
