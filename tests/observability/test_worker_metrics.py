"""``sustain worker --metrics-port``: the worker's Prometheus metrics, scraped over HTTP from a
real worker process running tasks for a real server."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from sustain import Sustain
from tests.scenarios.processes import SUSTAIN, Proc, wait_until
from tests.servers import free_port, start_server, unique


def _sample(text: str, name: str, labels: str = "") -> float | None:
    pattern = rf"^{re.escape(name)}{re.escape(labels)} ([0-9.e+-]+)$"
    match = re.search(pattern, text, re.MULTILINE)
    return float(match.group(1)) if match else None


def test_worker_metrics_over_http(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    group, port = unique("metrics"), free_port()
    worker = Proc(
        [SUSTAIN, "worker", "tests.observability.metrics_app", "--group", group,
         "--metrics-port", str(port)],
        tmp_path / "worker.log", {"SUSTAIN_URL": server.url},
    )  # fmt: skip
    client = Sustain(url=server.url, group=unique("caller"))
    url = f"http://127.0.0.1:{port}/metrics"

    def scrape() -> str:
        try:
            return httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            return ""

    try:
        wait_until(lambda: "serving group" in worker.output() or not worker.alive(), 60, "worker")
        assert worker.alive(), worker.output()
        assert _sample(scrape(), "sustain_worker_tasks_running") == 0.0
        gate = tmp_path / "open"
        handle = client.options(target=group).rpc(unique("w"), "work", 3, str(gate))
        # the task is held at the gate: one running
        wait_until(lambda: _sample(scrape(), "sustain_worker_tasks_running") == 1.0, 60,
                   "a running task in the metrics")  # fmt: skip
        gate.touch()
        assert len(handle.result(timeout=60)) == 3
        wait_until(lambda: _sample(scrape(), "sustain_worker_tasks_running") == 0.0, 60, "idle")
        text = scrape()
        assert _sample(text, "sustain_worker_retries_total", '{function="shaky"}') == 3.0
        steps = _sample(text, "sustain_worker_step_seconds_count", '{kind="run"}')
        assert steps is not None and steps >= 4  # 3 shaky steps and the gate
        gate_wait = _sample(text, "sustain_worker_step_seconds_sum", '{kind="run"}')
        assert gate_wait is not None and gate_wait > 0
        fulfilled = _sample(text, "sustain_worker_task_attempts_total", '{outcome="fulfilled"}')
        assert fulfilled is not None and fulfilled >= 1
    finally:
        client.stop()
        worker.stop()
        server.stop()


def test_metrics_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [SUSTAIN, "worker", "tests.observability.metrics_app", "--metrics-port", str(port)],
            capture_output=True, text=True, timeout=60, check=False,
            env={"SUSTAIN_URL": "http://127.0.0.1:9", "PATH": "/usr/bin:/bin"},
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot serve metrics on 127.0.0.1:")
    assert "Traceback" not in done.stderr
