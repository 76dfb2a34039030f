"""Queues from ``sustain.toml`` (``[queues.NAME]``): created at start, checked at load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sustain.runtime.config import ConfigError, load
from tests.servers import start_server

TOML = """
[queues.payments]
concurrency = 5
rate = "100/min"

[queues.emails]
per_key_concurrency = 1
"""


def test_a_server_creates_the_queues_of_its_configuration(tmp_path: Path) -> None:
    config = tmp_path / "sustain.toml"
    config.write_text(TOML)
    server = start_server(tmp_path, "--config", str(config))
    try:
        listed = server.ok("sustain.queue.list", {})["queues"]
        seen = [(q["name"], q.get("concurrency"), q.get("rate"), q.get("perKeyConcurrency"))
                for q in listed]  # fmt: skip
        assert seen == [("emails", None, None, 1), ("payments", 5, "100/min", None)]
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("concurrency = 0", "invalid queues.q: Queue concurrency must be a positive integer"),
        ('rate = "fast"', "invalid queues.q: Invalid queue rate 'fast'"),
        ("burst = 3", "unknown field"),
    ],
)
def test_a_bad_queue_table_is_a_one_line_error(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "sustain.toml"
    path.write_text(f"[queues.q]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load(config_path=str(path), environ={})
    result = subprocess.run(
        [sys.executable, "-m", "sustain.server", "serve", "--config", str(path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
