"""The server frozen (SIGSTOP) for a couple of seconds under a client load, then thawed
(SIGCONT): clients whose requests time out send them again, the server answers after
SIGCONT, and every write it acknowledged, before, during or after, is in the file (read back
after a kill -9 of the server)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

from tests.faults.load import Load, sqlite_ids
from tests.servers import acked_before_kill_9, start_server, unique

CLIENTS = 8
FROZEN_S = 2.0


def wait_for(acked: dict[str, Any], count: int) -> None:
    deadline = time.monotonic() + 60
    while len(acked) < count:
        assert time.monotonic() < deadline, f"only {len(acked)} writes acknowledged"
        time.sleep(0.01)


def test_a_frozen_server_loses_nothing_and_answers_after_sigcont(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    acked: dict[str, Any] = {}
    load = Load(timeout=0.5)  # far shorter than the freeze: every client times out
    stop = threading.Event()
    loader = threading.Thread(target=lambda: asyncio.run(load(server, acked, stop, CLIENTS)))
    try:
        loader.start()
        wait_for(acked, 100)
        server.proc.send_signal(signal.SIGSTOP)
        time.sleep(FROZEN_S)
        frozen = len(acked)
        server.proc.send_signal(signal.SIGCONT)
        wait_for(acked, frozen + 100)  # the clients' retries go through
        stop.set()
        loader.join(timeout=60)
        assert load.statuses["timeout"] >= CLIENTS, load.statuses
        assert set(load.statuses) <= {200, 503, "timeout"}, (load.statuses, load.bodies[:3])
        id = unique("thawed")
        assert server.ok("promise.create", {"id": id, "timeoutAt": 2**53})["promise"]["id"] == id
        more = acked_before_kill_9(server, CLIENTS, 50, Load())
    finally:
        stop.set()
        server.proc.send_signal(signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        loader.join(timeout=60)
        server.stop()
    acked.update(more)
    assert sqlite_ids(server.db, list(acked)) == set(acked)
