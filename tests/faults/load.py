"""A write load that records every answer, for the fault tests.

``Load(clients)`` is a ``tests.servers.Load`` (so ``acked_before_kill_9`` can drive it): each
of ``clients`` concurrent loops sends ``promise.create`` of a new id until ``stop``, puts
every promise the server acknowledged (HTTP 200) in ``acked`` by id and counts every status
in ``statuses``.  A request that timed out or found the server unavailable (503) is sent
again, unchanged, as a client following the protocol does (a create is idempotent: the retry
of an id that was written answers the same promise); a connection refused ends that loop
(the server is gone).  ``timeout`` is the client's per-request timeout.

``sqlite_ids(db, ids)``: which of ``ids`` the SQLite file ``db`` holds, read with sqlite3
once the server is gone: what every acknowledged write must be found in.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tests.servers import VERSION, ServerProcess, unique

FAR = 9_000_000_000_000


def create(pid: str, n: int) -> bytes:
    return msgspec.json.encode(
        {
            "kind": "promise.create",
            "head": {"corrId": pid, "version": VERSION},
            "data": {
                "id": pid,
                "timeoutAt": FAR,
                "param": {"headers": {"n": str(n)}, "data": "eyJ4IjogMX0="},
                "tags": {"client": str(n), "resonate:target": "poll://any@faults"},
            },
        }
    )


class Load:
    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.statuses: Counter[int | str] = Counter()
        self.bodies: list[str] = []  # the body of every answer that is not 200/503

    async def __call__(
        self, server: ServerProcess, acked: dict[str, Any], stop: threading.Event, clients: int
    ) -> None:
        await asyncio.gather(*(self._client(server, acked, stop, n) for n in range(clients)))

    async def _client(
        self, server: ServerProcess, acked: dict[str, Any], stop: threading.Event, n: int
    ) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=self.timeout) as http:
            while not stop.is_set():
                pid = f"fault-{n}-{unique('x')}"
                body = create(pid, n)
                while True:
                    try:
                        response = await http.post("/", content=body)
                    except httpx.TimeoutException:
                        self.statuses["timeout"] += 1
                        if stop.is_set():
                            return  # unanswered: may or may not be written, not acknowledged
                        continue
                    except httpx.TransportError:
                        self.statuses["gone"] += 1
                        return  # the server is gone: what was not answered may be lost
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        acked[pid] = response.json()["data"]["promise"]
                        break
                    if response.status_code != 503 or stop.is_set():
                        self.bodies.append(response.text[:300])
                        break


def sqlite_ids(db: Path, ids: list[str]) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        found: set[str] = set()
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = conn.execute(f"SELECT id FROM promises WHERE id IN ({marks})", part)
            found.update(row[0] for row in rows)
    return found
