"""PostgreSQL connection loss under load: the server's backends are terminated
(``pg_terminate_backend``) again and again while clients write.  Every request is answered
2xx, 4xx or 503 (never a 500: a lost connection is a store that is unavailable, retried by the
client), the pool replaces what it lost, the server answers normally afterwards, and every
write acknowledged with a 200 is in the database, also after a ``kill -9`` of the server."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo

from tests.faults.load import Load
from tests.servers import acked_before_kill_9, start_server, unique
from tests.store.postgres_db import admin_url, temp_database

CLIENTS = 12
ROUNDS = 15  # terminations, ROUND_GAP s apart: each cuts whatever is in flight then


def terminate_backends(dbname: str) -> int:
    with psycopg.connect(admin_url(), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return len(rows)


def stored_ids(url: str, ids: list[str]) -> dict[str, Any]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT id, state FROM promises WHERE id = ANY(%s)", (ids,)).fetchall()
    return dict(rows)


def test_terminated_backends_answer_503_and_lose_no_acknowledged_write(tmp_path: Path) -> None:
    with temp_database() as url:
        dbname = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
        assert isinstance(dbname, str)
        server = start_server(tmp_path, "--postgres", url)
        try:
            load = Load(timeout=30)
            acked: dict[str, Any] = {}
            stop = threading.Event()
            loader = threading.Thread(
                target=lambda: asyncio.run(load(server, acked, stop, CLIENTS))
            )
            loader.start()
            try:
                terminated = 0
                for _ in range(ROUNDS):
                    # Wait for writes between cuts: every cut lands on a loaded pool.
                    before = len(acked)
                    deadline = time.monotonic() + 30
                    while len(acked) < before + 20 and time.monotonic() < deadline:
                        time.sleep(0.01)
                    terminated += terminate_backends(dbname)
            finally:
                stop.set()
                loader.join(timeout=60)
            assert terminated >= ROUNDS, terminated
            statuses = dict(load.statuses)
            assert set(statuses) <= {200, 503}, (statuses, load.bodies[:5])
            assert statuses.get(200, 0) >= ROUNDS * 20, statuses
            assert "Internal error" not in server.output()
            assert "Traceback" not in server.output()

            # The server is well afterwards: a write and a read answer at once.
            id = unique("after")
            assert (
                server.ok("promise.create", {"id": id, "timeoutAt": 2**53})["promise"]["id"] == id
            )
            assert server.ok("promise.get", {"id": id})["promise"]["state"] == "pending"

            # Every acknowledged write is in the database; then the same after a kill -9.
            found = stored_ids(url, list(acked))
            assert found.keys() == acked.keys(), set(acked) - set(found)
            more = acked_before_kill_9(server, CLIENTS, len(acked) + 100, Load())
            found = stored_ids(url, list(more))
            assert found.keys() == more.keys(), set(more) - set(found)
        finally:
            server.stop()
