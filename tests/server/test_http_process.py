"""The server process as an operator sees it: metrics, CORS, the store lock, the CLI."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from tests.servers import free_port, unique


def test_metrics_on_the_api_port(spawn: Any) -> None:
    server = spawn()
    server.ok("promise.create", {"id": unique("m"), "timeoutAt": int(time.time() * 1000) + 60000})
    # A seconds-resolution schedule fires within a second or two: its promises are counted.
    schedule = {
        "id": unique("s"), "cron": "* * * * * *", "promiseId": "{{.id}}.{{.timestamp}}",
        "promiseTimeout": 60000, "promiseTags": {"resonate:target": "poll://any@nobody"},
    }  # fmt: skip
    server.ok("schedule.create", schedule)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        fired = server.ok("promise.search", {"tags": {"resonate:schedule": schedule["id"]}})
        if fired["promises"]:
            break
        time.sleep(0.1)
    server.ok("schedule.delete", {"id": schedule["id"]})
    server.rpc("promise.get", {"id": "metrics-missing"})
    response = server.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'sustain_request_total{kind="promise.create",status="200"} 1.0' in text
    assert 'sustain_request_total{kind="promise.get",status="404"} 1.0' in text
    assert "sustain_request_duration_seconds_bucket" in text
    counted = [line for line in text.splitlines() if line.startswith("sustain_schedule_promises_")]
    assert counted and float(counted[0].split()[1]) >= 1, counted
    assert server.client.post("/metrics").status_code == 405


def test_a_separate_metrics_port_is_opt_in(spawn: Any) -> None:
    port = free_port()
    server = spawn("--metrics-port", str(port))
    server.rpc("promise.get", {"id": "metrics-missing"})
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    assert 'sustain_request_total{kind="promise.get",status="404"} 1.0' in text
    assert server.client.get("/metrics").status_code == 200  # still on the API port too


def test_metrics_can_be_turned_off(spawn: Any) -> None:
    server = spawn("--metrics", "false")
    assert server.client.get("/metrics").status_code == 404


def test_two_servers_run_on_one_host_with_the_defaults(spawn: Any) -> None:
    # Metrics used to take port 9090 (Prometheus's own) by default: a second server failed.
    first, second = spawn(), spawn()
    assert first.client.get("/metrics").status_code == 200
    assert second.client.get("/metrics").status_code == 200


def test_a_metrics_port_in_use_names_the_flag(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable, "-m", "sustain.server", "serve", "--bind", "127.0.0.1",
                "--port", str(free_port()), "--metrics-port", str(port),
                "--sqlite-path", str(tmp_path / "x.db"),
            ],
            capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"--metrics-port {port}" in result.stderr, result.stderr
    assert "in use" in result.stderr, result.stderr


def test_cors(spawn: Any) -> None:
    server = spawn("--cors-allow-origin", "http://ui.example")
    allowed = server.client.options(
        "/", headers={"origin": "http://ui.example", "access-control-request-method": "POST"}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "http://ui.example"
    other = server.client.get("/health", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    plain = httpx.get(server.url + "/health")
    assert "access-control-allow-origin" not in plain.headers


def test_no_cors_headers_by_default(spawn: Any) -> None:
    server = spawn()
    response = server.client.get("/health", headers={"origin": "http://ui.example"})
    assert "access-control-allow-origin" not in response.headers


def test_second_server_on_the_same_file_fails_in_one_line(spawn: Any, tmp_path: Path) -> None:
    first = spawn()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sustain.server",
            "serve",
            "--bind",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--metrics-port",
            "0",
            "--sqlite-path",
            str(first.db),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert first.client.get("/ready").status_code == 200


def test_writes_survive_a_restart(spawn: Any, tmp_path: Path) -> None:
    first = spawn()
    pid = unique("durable")
    created = first.ok("promise.create", {"id": pid, "timeoutAt": 4_000_000_000_000})
    assert first.stop() == 0
    second = spawn("--sqlite-path", str(first.db))
    assert second.ok("promise.get", {"id": pid}) == created


def test_the_sustain_script_with_the_makefile_flags(spawn: Any) -> None:
    # `make serve` runs: sustain serve --bind 127.0.0.1 --port 8001 --sqlite-path ./sustain.db
    script = str(Path(sys.executable).parent / "sustain")
    server = spawn(launcher=[script])
    assert server.ok("promise.create", {"id": unique("script"), "timeoutAt": 1})
    assert server.db.exists()


def test_environment_configures_the_server(spawn: Any, tmp_path: Path) -> None:
    server = spawn(command="dev", env={"SUSTAIN_SERVER__MAX_BODY_SIZE": "300"})
    data = {"id": "x" * 400, "timeoutAt": 1}
    assert server.rpc("promise.get", {"id": "small"}).status == 404
    response = server.post(msgspec.json.encode({"kind": "promise.create", "data": data}))
    assert response.status_code == 413
    # dev keeps its in-memory store and debug operations whatever the environment says.
    dev = spawn(command="dev", env={"SUSTAIN_STORAGE__TYPE": "sqlite", "SUSTAIN_DEBUG": "0"})
    assert dev.rpc("debug.snap", {}).status == 200
    assert not (tmp_path / "sustain.db").exists()
    # Flags beat the environment.
    db = tmp_path / "from-env.db"
    other = spawn(env={"SUSTAIN_STORAGE__SQLITE__PATH": str(db)})
    assert other.db.exists()
    assert not db.exists()
