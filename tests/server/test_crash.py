"""Durability: every promise whose create was answered 200 survives ``kill -9`` of the server.

Many clients create promises concurrently; the server is SIGKILLed while requests are in
flight; a new server on the same file must hold every acknowledged promise, unchanged.  With
group commit an answer is sent only after the batch holding the write has been fsync'd, so
nothing answered can be lost, whatever was still queued when the process died.
"""

from __future__ import annotations

from pathlib import Path

from tests.servers import acked_before_kill_9, start_server

CLIENTS = 32
ACKED_BEFORE_KILL = 600


def test_acknowledged_creates_survive_kill_9(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    snapshot = acked_before_kill_9(first, CLIENTS, ACKED_BEFORE_KILL)

    second = start_server(tmp_path, "--sqlite-path", str(first.db))
    try:
        for pid, promise in snapshot.items():
            assert second.ok("promise.get", {"id": pid}) == {"promise": promise}
        found = second.ok("promise.search", {"tags": {"resonate:target": "poll://any@crash"},
                                              "limit": 1000})
        assert len(found["promises"]) >= min(len(snapshot), 1000)
    finally:
        second.stop()
