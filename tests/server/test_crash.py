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

import httpx
import msgspec

from tests.servers import VERSION, ServerProcess, start_server, unique

CLIENTS = 32
ACKED_BEFORE_KILL = 600


async def _load(server: ServerProcess, acked: dict[str, Any], stop: threading.Event) -> None:
    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                pid = f"crash-{n}-{i}-{unique('x')}"
                envelope = {
                    "kind": "promise.create",
                    "head": {"corrId": pid, "version": VERSION},
                    "data": {
                        "id": pid,
                        "timeoutAt": 9_000_000_000_000,
                        "param": {"headers": {"n": str(n)}, "data": "eyJ4IjogMX0="},
                        "tags": {"client": str(n), "resonate:target": "poll://any@crash"},
                    },
                }
                try:
                    response = await http.post("/", content=msgspec.json.encode(envelope))
                except httpx.HTTPError:
                    return  # the server is gone: whatever was not answered may be lost
                if response.status_code == 200:
                    acked[pid] = response.json()["data"]["promise"]

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


def test_acknowledged_creates_survive_kill_9(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    acked: dict[str, Any] = {}
    stop = threading.Event()
    loader = threading.Thread(target=lambda: asyncio.run(_load(first, acked, stop)))
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
