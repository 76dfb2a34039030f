"""Configuration layering (defaults < sustain.toml < SUSTAIN_* < flags) and its errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sustain.runtime.config import ConfigError, load


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sustain.toml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    config = load(environ={})
    assert config.server.port == 8001
    assert config.server.bind == "127.0.0.1"
    assert config.storage.type == "sqlite"
    assert config.storage.sqlite.path == "sustain.db"
    assert config.storage.sqlite.synchronous == "FULL"
    assert config.observability.metrics  # on the API port's GET /metrics
    assert config.observability.metrics_port == 0  # no second port unless asked for
    assert config.transports.http_poll.max_connections_per_prefix == 100
    assert config.server.max_body_size == 16 * 1024 * 1024
    assert config.server_url == "http://localhost:8001"
    assert not config.auth_enabled


def test_each_layer_overrides_the_one_below(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[server]\nport = 1111\nbind = '10.0.0.1'\nhost = 'h'\n"
        "[storage.sqlite]\npath = 'file.db'\nsynchronous = 'normal'\n",
    )
    env = {"SUSTAIN_SERVER__PORT": "2222", "SUSTAIN_STORAGE__SQLITE__PATH": "env.db"}
    config = load(flags={"server.port": 3333}, config_path=path, environ=env)
    assert config.server.port == 3333  # flag beats env and file
    assert config.storage.sqlite.path == "env.db"  # env beats file
    assert config.server.bind == "10.0.0.1"  # file beats default
    assert config.storage.sqlite.synchronous == "NORMAL"  # normalised
    assert config.server_url == "http://h:3333"


def test_env_values_are_converted_and_unknown_names_ignored() -> None:
    env = {
        "SUSTAIN_DEBUG": "true",
        "SUSTAIN_TASKS__RETRY_TIMEOUT": "500",
        "SUSTAIN_SERVER__CORS__ALLOW_ORIGINS": "http://a, http://b",
        "SUSTAIN_URL": "http://elsewhere",  # the SDK's, not a server key
        "SUSTAIN_NOPE__X": "1",
    }
    config = load(environ=env)
    assert config.debug is True
    assert config.tasks.retry_timeout == 500
    assert config.server.cors.allow_origins == ("http://a", "http://b")


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"SUSTAIN_STORAGE__TYPE": "mysql"}, "unknown storage type 'mysql'"),
        ({"SUSTAIN_STORAGE__TYPE": "postgres"}, "needs storage.postgres.url"),
        ({"SUSTAIN_STORAGE__POSTGRES__POOL_SIZE": "0"}, "storage.postgres.pool_size"),
        ({"SUSTAIN_SERVER__PORT": "eighty"}, "$.server.port"),
        ({"SUSTAIN_STORAGE__SQLITE__SYNCHRONOUS": "OFF"}, "synchronous"),
        ({"SUSTAIN_MESSAGES__BATCH_SIZE": "0"}, "messages.batch_size"),
        ({"SUSTAIN_TRANSPORTS__HTTP_PUSH__AUTH__MODE": "bearer"}, "needs a token"),
        (
            {"SUSTAIN_TRANSPORTS__HTTP_POLL__MAX_CONNECTIONS_PER_PREFIX": "0"},
            "max_connections_per_prefix",
        ),
        (
            {
                "SUSTAIN_OBSERVABILITY__METRICS": "false",
                "SUSTAIN_OBSERVABILITY__METRICS_PORT": "9464",
            },
            "metrics_port needs observability.metrics = true",
        ),
    ],
)
def test_bad_values_are_one_line_errors(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(environ=env)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_file_keys_and_missing_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown field"):
        load(config_path=write(tmp_path, "[server]\nprot = 1\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load(config_path=str(tmp_path / "missing.toml"), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load(config_path=write(tmp_path, "[server\n"), environ={})


def test_storage_type_from_a_file_is_checked_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown storage type 'mysql'"):
        load(config_path=write(tmp_path, "[storage]\ntype = 'mysql'\n"), environ={})


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--storage-type", "mysql"], "unknown storage type"),
        (["--storage-type", "postgres"], "needs storage.postgres.url"),
        (["--synchronous", "sometimes"], "synchronous"),
        (["--config", "/nonexistent/sustain.toml"], "not found"),
    ],
)
def test_cli_config_errors_exit_1_with_one_line(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sustain.server", "serve", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_protocol_batch_defaults_on_and_is_set_by_file_or_env(tmp_path: Path) -> None:
    assert load(environ={}).protocol.batch is True
    path = write(tmp_path, "[protocol]\nbatch = false\n")
    assert load(config_path=path, environ={}).protocol.batch is False
    assert load(environ={"SUSTAIN_PROTOCOL__BATCH": "false"}).protocol.batch is False
    assert load(config_path=path, environ={"SUSTAIN_PROTOCOL__BATCH": "true"}).protocol.batch
    with pytest.raises(ConfigError, match=r"\$\.protocol\.batch"):
        load(environ={"SUSTAIN_PROTOCOL__BATCH": "maybe"})


def test_limits_have_documented_defaults_and_every_layer_sets_them(tmp_path: Path) -> None:
    limits = load(environ={}).limits
    assert (
        limits.max_answer_size,
        limits.max_batch_requests,
        limits.max_heartbeat_tasks,
        limits.max_cron_length,
        limits.max_cron_terms,
        limits.max_tags,
    ) == (16 * 1024 * 1024, 1000, 10_000, 1024, 256, 64)
    path = write(tmp_path, "[limits]\nmax_tags = 8\nmax_answer_size = 1048576\n")
    config = load(
        flags={"limits.max_cron_terms": 12},
        config_path=path,
        environ={"SUSTAIN_LIMITS__MAX_BATCH_REQUESTS": "50", "SUSTAIN_LIMITS__MAX_TAGS": "9"},
    )
    assert config.limits.max_tags == 9
    assert config.limits.max_answer_size == 1024 * 1024
    assert config.limits.max_batch_requests == 50
    assert config.limits.max_cron_terms == 12
    for key in ("MAX_ANSWER_SIZE", "MAX_HEARTBEAT_TASKS", "MAX_CRON_LENGTH", "MAX_TAGS"):
        with pytest.raises(
            ConfigError, match=rf"invalid limits\.{key.lower()}: 0 \(must be >= 1\)"
        ):
            load(environ={f"SUSTAIN_LIMITS__{key}": "0"})
