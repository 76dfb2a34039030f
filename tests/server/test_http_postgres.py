"""A real ``sustain serve --postgres`` process: the HTTP suite, readiness, crash safety, CLI.

* A representative part of the server's HTTP tests (every operation kind, SSE delivery,
  timers woken by their deadline, retries and lease expiry) runs unchanged against a server
  on PostgreSQL: the tests are imported here, and this module's ``server``, ``debug_server``
  and ``spawn`` fixtures (each on a throw-away database) take the place of the SQLite ones.
* Many HTTP clients race to acquire one task: exactly one wins, nobody gets a 5xx.
* ``/ready`` follows the database: 503 while it refuses connections, 200 once it is back.
* ``kill -9`` of the server under a create load: every acknowledged create is in the
  database afterwards (``synchronous_commit = on``; mirrors test_crash.py).
* ``sustain migrate --postgres`` prints what it applied and is idempotent; a bad URL or an
  unreachable database is one ``Error:`` line and exit 1, for ``migrate`` and ``serve``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from sustain.runtime.config import load
from tests.e2e.cli_harness import fails, sustain
from tests.server.test_http_ops import (
    test_debug_operations,
    test_fence_preload_opt_out,
    test_promise_create_get_settle,
    test_promise_search_with_pagination,
    test_register_callback_and_listener,
    test_schedules,
    test_task_create_release_halt_continue_search,
    test_task_lifecycle,
)
from tests.server.test_http_sse import (
    test_execute_to_any_group,
    test_execute_to_uni_id,
    test_unblock_to_listener,
)
from tests.server.test_http_timers import (
    NO_POLLING,
    test_promise_timer_fires_without_debug,
    test_retry_and_lease_expiry_redeliver,
    test_timeout_unblocks_a_listener,
)
from tests.servers import VERSION, ServerProcess, acked_before_kill_9, start_server, unique
from tests.store.postgres_db import admin_url, create_database, drop_database, temp_database

REUSED = (
    test_debug_operations,
    test_fence_preload_opt_out,
    test_promise_create_get_settle,
    test_promise_search_with_pagination,
    test_register_callback_and_listener,
    test_schedules,
    test_task_create_release_halt_continue_search,
    test_task_lifecycle,
    test_execute_to_any_group,
    test_execute_to_uni_id,
    test_unblock_to_listener,
    test_promise_timer_fires_without_debug,
    test_retry_and_lease_expiry_redeliver,
    test_timeout_unblocks_a_listener,
)


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with temp_database() as url:
        proc = start_server(tmp_path_factory.mktemp("pg"), "--postgres", url, *NO_POLLING)
        yield proc
        proc.stop()


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with temp_database() as url:
        proc = start_server(tmp_path_factory.mktemp("pgdebug"), "--postgres", url, "--debug")
        yield proc
        proc.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[ServerProcess, str]] = []

    def _spawn(*flags: str, **kw: Any) -> ServerProcess:
        url = create_database()
        try:
            proc = start_server(tmp_path, "--postgres", url, *flags, **kw)
        except BaseException:
            drop_database(url)
            raise
        started.append((proc, url))
        return proc

    yield _spawn
    for proc, url in started:
        proc.stop()
        drop_database(url)


def test_the_server_runs_on_postgres(server: ServerProcess) -> None:
    # The reused tests above would pass on SQLite too: make sure this one is PostgreSQL.
    id = unique("where")
    server.ok("promise.create", {"id": id, "timeoutAt": 2**53, "tags": {}})
    url = server.proc.args[server.proc.args.index("--postgres") + 1]  # type: ignore[union-attr]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT state FROM promises WHERE id = %s", (id,)).fetchone() == (
            "pending",
        )
        versions = conn.execute("SELECT version FROM schema_migrations").fetchall()
    assert versions == [(1,), (2,), (3,), (4,)]
    assert not server.db.exists()  # the --sqlite-path that start_server passes is unused


async def test_many_clients_acquire_one_task_one_wins_no_5xx(server: ServerProcess) -> None:
    id = unique("race")
    tags = {"resonate:target": "poll://any@r"}
    server.ok("promise.create", {"id": id, "timeoutAt": 2**53, "tags": tags})

    async def acquire(http: httpx.AsyncClient, n: int) -> int:
        envelope = {
            "kind": "task.acquire",
            "head": {"corrId": f"c{n}", "version": VERSION},
            "data": {"id": id, "version": 0, "pid": f"w{n}", "ttl": 60_000},
        }
        response = await http.post("/", content=msgspec.json.encode(envelope))
        return response.status_code

    async with httpx.AsyncClient(
        base_url=server.url, timeout=30, limits=httpx.Limits(max_connections=32)
    ) as http:
        statuses = await asyncio.gather(*(acquire(http, n) for n in range(32)))
    assert sorted(statuses) == [200] + [409] * 31
    task = server.ok("task.get", {"id": id})["task"]
    assert (task["state"], task["version"]) == ("acquired", 1)


def test_ready_follows_the_database(tmp_path: Path) -> None:
    with temp_database() as url:
        proc = start_server(tmp_path, "--postgres", url)
        name = url.rsplit("/", 1)[1]
        try:
            with psycopg.connect(admin_url(), autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')  # type: ignore[arg-type]
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
            wait_until(
                lambda: httpx.get(f"{proc.url}/ready", timeout=30).status_code == 503,
                "/ready to answer 503 while the database is down",
            )
            # An operation meanwhile is a 503 the SDK retries, never a 500.
            answer = proc.rpc("promise.get", {"id": "x"})
            assert (answer.status, answer.data) == (503, "Service unavailable: retry")
            with psycopg.connect(admin_url(), autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true')  # type: ignore[arg-type]
            wait_until(
                lambda: httpx.get(f"{proc.url}/ready", timeout=30).status_code == 200,
                "/ready to answer 200 once the database is back",
            )
            id = unique("back")
            wait_until(
                lambda: proc.rpc("promise.create", {"id": id, "timeoutAt": 2**53}).status == 200,
                "operations to work again",
            )
            assert proc.proc.poll() is None  # it rode the outage out
            assert "operation promise.get failed" not in proc.output()  # no 500 was logged
        finally:
            proc.stop()


CLIENTS = 16
ACKED_BEFORE_KILL = 300


def test_acknowledged_creates_survive_kill_9(tmp_path: Path) -> None:
    with temp_database() as url:
        first = start_server(tmp_path, "--postgres", url)
        snapshot = acked_before_kill_9(first, CLIENTS, ACKED_BEFORE_KILL)

        second = start_server(tmp_path, "--postgres", url)
        try:
            for pid, promise in snapshot.items():
                assert second.ok("promise.get", {"id": pid}) == {"promise": promise}
        finally:
            second.stop()


def test_migrate_prints_what_it_applied_and_is_idempotent() -> None:
    with temp_database() as url:
        first = sustain("migrate", "--postgres", url)
        assert first.code == 0, first.err
        assert "applied 0001_init to " in first.out
        assert "applied 0002_cluster to " in first.out
        assert "applied 0003_status to " in first.out
        assert "applied 0004_queues to " in first.out
        second = sustain("migrate", "--postgres", url)
        assert second.code == 0, second.err
        assert "applied" not in second.out
        assert "up to date (schema version 4)" in second.out
        with psycopg.connect(url) as conn:
            rows = conn.execute(
                "SELECT version, name FROM schema_migrations ORDER BY version"
            ).fetchall()
        assert rows == [(1, "init"), (2, "cluster"), (3, "status"), (4, "queues")]


def test_migrate_an_sqlite_file(tmp_path: Path) -> None:
    path = str(tmp_path / "m.db")
    first = sustain("migrate", "--sqlite-path", path)
    applied = f"applied 0001_init to {path}\napplied 0002_status to {path}\n"
    applied += f"applied 0003_queues to {path}\n"
    assert (first.code, first.out) == (0, applied)
    second = sustain("migrate", "--sqlite-path", path)
    assert second.code == 0
    assert second.out == f"{path} is up to date (schema version 3): nothing to apply\n"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["migrate", "--postgres", "not a url"], "invalid URL"),
        (["migrate", "--postgres", "postgresql://nobody@127.0.0.1:1/x"], "cannot open PostgreSQL"),
        (["serve", "--postgres", "postgresql://nobody@127.0.0.1:1/x"], "cannot open PostgreSQL"),
        (["serve", "--storage-type", "postgres"], "needs storage.postgres.url"),
        (["migrate", "--postgres", "postgresql://x@h/d", "--sqlite-path", "f.db"], "not both"),
    ],
)
def test_bad_postgres_url_is_one_error_line(args: list[str], fragment: str) -> None:
    assert fragment in fails(*args)  # exit 1, one Error: line, no traceback


@pytest.mark.parametrize(
    "data",
    [
        {"param": {"data": "a\u0000b"}},
        {"tags": {"k": "\u0000"}},
        {"param": {"headers": {"h": "x"}, "data": "ok"}, "tags": {"\u0000": "v"}},
    ],
)
def test_nul_characters_are_a_400_not_a_500(server: ServerProcess, data: dict[str, Any]) -> None:
    # PostgreSQL text cannot hold NUL: refused as bad input, and nothing is written.
    id = unique("nul")
    answer = server.rpc("promise.create", {"id": id, "timeoutAt": 2**53, **data})
    assert (answer.status, answer.data) == (
        400,
        "Invalid request: strings must not contain NUL (0x00) characters",
    )
    assert server.rpc("promise.get", {"id": id}).status == 404


def test_the_url_selects_postgres_from_every_layer(tmp_path: Path) -> None:
    url = "postgresql://u@h:1/d"
    assert load(environ={"SUSTAIN_STORAGE__POSTGRES__URL": url}).storage.type == "postgres"
    toml = tmp_path / "sustain.toml"
    toml.write_text(f"[storage.postgres]\nurl = '{url}'\npool_size = 3\n")
    config = load(config_path=str(toml), environ={})
    assert (config.storage.type, config.storage.postgres.url) == ("postgres", url)
    assert config.storage.postgres.pool_size == 3
    # An explicit type wins over a URL from any layer.
    explicit = load(config_path=str(toml), environ={"SUSTAIN_STORAGE__TYPE": "sqlite"})
    assert explicit.storage.type == "sqlite"
    assert load(environ={}).storage.type == "sqlite"


def test_serve_takes_the_url_from_the_environment(tmp_path: Path) -> None:
    with temp_database() as url:
        proc = start_server(tmp_path, env={"SUSTAIN_STORAGE__POSTGRES__URL": url})
        try:
            id = unique("env")
            proc.ok("promise.create", {"id": id, "timeoutAt": 2**53})
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT id FROM promises WHERE id = %s", (id,)).fetchone()
            assert row == (id,)
        finally:
            proc.stop()
