"""Durability: every promise whose create was answered 200 survives ``kill -9`` of the server.

Many clients create promises concurrently; the server is SIGKILLed while requests are in
flight; a new server on the same file must hold every acknowledged promise, unchanged.  With
group commit an answer is sent only after the batch holding the write has been fsync'd, so
nothing answered can be lost, whatever was still queued when the process died.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from pathlib import Path
from typing import Any

from tests.servers import create_load, start_server

CLIENTS = 32
ACKED_BEFORE_KILL = 600


def test_acknowledged_creates_survive_kill_9(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    acked: dict[str, Any] = {}
    stop = threading.Event()
    loader = threading.Thread(target=lambda: asyncio.run(create_load(first, acked, stop, CLIENTS)))
    loader.start()
    try:
        while len(acked) < ACKED_BEFORE_KILL and loader.is_alive():
            threading.Event().wait(0.01)
        first.proc.send_signal(signal.SIGKILL)  # mid-load: requests are still in flight
        first.proc.wait()
    finally:
        stop.set()
        loader.join(timeout=60)
    assert first.proc.returncode == -signal.SIGKILL
    snapshot = dict(acked)
    assert len(snapshot) >= ACKED_BEFORE_KILL

    second = start_server(tmp_path, "--sqlite-path", str(first.db))
    try:
        for pid, promise in snapshot.items():
            assert second.ok("promise.get", {"id": pid}) == {"promise": promise}
        found = second.ok("promise.search", {"tags": {"resonate:target": "poll://any@crash"},
                                              "limit": 1000})
        assert len(found["promises"]) >= min(len(snapshot), 1000)
    finally:
        second.stop()
