"""``sustain serve`` and ``sustain dev``: run the server (PROTOCOL.md §7.2-7.3).

Every flag maps to one configuration key; a flag that is not given leaves the key to the
lower layers (``sustain.toml`` < ``SUSTAIN_*`` environment < flags), so each flag is also
settable as ``SUSTAIN_<SECTION>__<KEY>``.  Short names (``--port``, ``--sqlite-path``) and
the reference server's long names (``--server-port``, ``--storage-sqlite-path``) both work.

``dev`` is ``serve`` with an in-memory store and debug operations on; both are set at the
flag layer, so a ``sustain.toml`` or environment meant for ``serve`` cannot turn a throw-away
server into one writing a file (only ``dev``'s own ``--storage-type`` / ``--no-debug`` can).

A configuration or start-up problem prints one ``Error: ...`` line and exits 1, never a
traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import click

from sustain import extras
from sustain.errors import MissingExtraError
from sustain.runtime.config import ConfigError, ServerConfig, load
from sustain.store.errors import StoreError

# (option names, configuration key, click type, repeatable)
_OPTIONS: list[tuple[tuple[str, ...], str, Any, bool, str]] = [
    (("--level",), "level", str, False, "log level (info, debug, ...)"),
    (("--host", "--server-host"), "server.host", str, False, "host in serverUrl"),
    (("--port", "--server-port"), "server.port", int, False, "API port (8001)"),
    (
        ("--bind", "--server-bind"),
        "server.bind",
        str,
        False,
        "API bind address (127.0.0.1; 0.0.0.0 in a container)",
    ),
    (("--url", "--server-url"), "server.url", str, False, "serverUrl in execute messages"),
    (
        ("--shutdown-timeout", "--server-shutdown-timeout"),
        "server.shutdown_timeout",
        int,
        False,
        "graceful shutdown, ms",
    ),
    (
        ("--cors-allow-origin", "--server-cors-allow-origin"),
        "server.cors.allow_origins",
        str,
        True,
        "CORS origin (repeatable)",
    ),
    (("--max-body-size",), "server.max_body_size", int, False, "largest request body, bytes"),
    (
        ("--max-answer-size", "--limits-max-answer-size"),
        "limits.max_answer_size",
        int,
        False,
        "answer bytes of a request or a whole batch; searches page before it (16 MiB)",
    ),
    (
        ("--max-batch-requests", "--limits-max-batch-requests"),
        "limits.max_batch_requests",
        int,
        False,
        "elements of one sustain.batch (1000)",
    ),
    (
        ("--max-heartbeat-tasks", "--limits-max-heartbeat-tasks"),
        "limits.max_heartbeat_tasks",
        int,
        False,
        "tasks of one task.heartbeat (10000)",
    ),
    (
        ("--max-cron-length", "--limits-max-cron-length"),
        "limits.max_cron_length",
        int,
        False,
        "characters of a cron expression (1024)",
    ),
    (
        ("--max-cron-terms", "--limits-max-cron-terms"),
        "limits.max_cron_terms",
        int,
        False,
        "comma-separated terms of a cron expression (256)",
    ),
    (
        ("--max-tags", "--limits-max-tags"),
        "limits.max_tags",
        int,
        False,
        "entries of a tag map or a tag filter (64)",
    ),
    (("--storage-type",), "storage.type", str, False, "sqlite, memory or postgres"),
    (
        ("--sqlite-path", "--storage-sqlite-path"),
        "storage.sqlite.path",
        str,
        False,
        "SQLite file (sustain.db)",
    ),
    (
        ("--synchronous", "--storage-sqlite-synchronous"),
        "storage.sqlite.synchronous",
        str,
        False,
        "FULL (default) or NORMAL",
    ),
    (
        ("--postgres", "--storage-postgres-url"),
        "storage.postgres.url",
        str,
        False,
        "PostgreSQL URL (selects the postgres store)",
    ),
    (
        ("--postgres-pool-size", "--storage-postgres-pool-size"),
        "storage.postgres.pool_size",
        int,
        False,
        "PostgreSQL connections (10)",
    ),
    (
        ("--replica-id", "--server-replica-id"),
        "server.replica_id",
        str,
        False,
        "replica name in a PostgreSQL cluster (hostname-pid)",
    ),
    (
        ("--cluster-replica-timeout",),
        "cluster.replica_timeout",
        int,
        False,
        "a silent replica is dead after this, ms",
    ),
    (("--auth-publickey",), "auth.publickey", str, False, "PEM public key, or 'none'"),
    (("--auth-iss",), "auth.iss", str, False, "required JWT issuer"),
    (("--auth-aud",), "auth.aud", str, False, "required JWT audience"),
    (
        ("--retry-timeout", "--tasks-retry-timeout"),
        "tasks.retry_timeout",
        int,
        False,
        "task retry timeout, ms",
    ),
    (
        ("--timeouts-poll-interval",),
        "timeouts.poll_interval",
        int,
        False,
        "max timer-loop sleep, ms",
    ),
    (
        ("--messages-poll-interval",),
        "messages.poll_interval",
        int,
        False,
        "max outbox-loop sleep, ms",
    ),
    (("--messages-batch-size",), "messages.batch_size", int, False, "outbox claim batch"),
    (
        ("--http-push-enabled", "--transports-http-push-enabled"),
        "transports.http_push.enabled",
        bool,
        False,
        "deliver to http(s):// targets",
    ),
    (
        ("--http-push-concurrency", "--transports-http-push-concurrency"),
        "transports.http_push.concurrency",
        int,
        False,
        "pushes in flight",
    ),
    (
        ("--http-push-connect-timeout", "--transports-http-push-connect-timeout"),
        "transports.http_push.connect_timeout",
        int,
        False,
        "ms",
    ),
    (
        ("--http-push-request-timeout", "--transports-http-push-request-timeout"),
        "transports.http_push.request_timeout",
        int,
        False,
        "ms",
    ),
    (
        ("--http-push-auth-mode", "--transports-http-push-auth-mode"),
        "transports.http_push.auth.mode",
        str,
        False,
        "none or bearer",
    ),
    (
        ("--http-push-auth-token", "--transports-http-push-auth-token"),
        "transports.http_push.auth.token",
        str,
        False,
        "bearer token for pushes",
    ),
    (
        ("--http-push-auth-header", "--transports-http-push-auth-header"),
        "transports.http_push.auth.header",
        str,
        False,
        "header carrying the token",
    ),
    (
        ("--http-poll-enabled", "--transports-http-poll-enabled"),
        "transports.http_poll.enabled",
        bool,
        False,
        "deliver to poll:// addresses",
    ),
    (
        ("--http-poll-max-connections", "--transports-http-poll-max-connections"),
        "transports.http_poll.max_connections",
        int,
        False,
        "SSE connections",
    ),
    (
        (
            "--http-poll-max-connections-per-prefix",
            "--transports-http-poll-max-connections-per-prefix",
        ),
        "transports.http_poll.max_connections_per_prefix",
        int,
        False,
        "SSE connections per tenant prefix (100; more get 429)",
    ),
    (
        ("--http-poll-buffer-size", "--transports-http-poll-buffer-size"),
        "transports.http_poll.buffer_size",
        int,
        False,
        "messages buffered per SSE connection",
    ),
    (
        ("--metrics", "--observability-metrics"),
        "observability.metrics",
        bool,
        False,
        "Prometheus GET /metrics on the API port (true); with auth on, for admin or "
        'prefix "" tokens only',
    ),
    (
        ("--metrics-port", "--observability-metrics-port"),
        "observability.metrics_port",
        int,
        False,
        "also serve /metrics on this port, UNAUTHENTICATED: for a private scrape network "
        "(0 = off, the default)",
    ),
]


def _dest(key: str) -> str:
    return key.replace(".", "__")


def _server_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for names, key, kind, multiple, help_text in reversed(_OPTIONS):
        env = "SUSTAIN_" + key.upper().replace(".", "__")
        fn = click.option(
            *names,
            _dest(key),
            type=kind,
            multiple=multiple,
            default=None,
            help=f"{help_text} [env {env}]",
        )(fn)
    fn = click.option(
        "--debug/--no-debug", "debug", default=None, help="enable debug.* operations"
    )(fn)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="configuration file (default ./sustain.toml if present)",
    )(fn)


def _flags(values: dict[str, Any]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    for _, key, _, multiple, _ in _OPTIONS:
        value = values.get(_dest(key))
        if multiple:
            value = list(value) if value else None
        flags[key] = value
    flags["debug"] = values.get("debug")
    if flags.get("storage.postgres.url") and flags.get("storage.type") is None:
        flags["storage.type"] = "postgres"  # --postgres URL alone selects the store
    return flags


def _configure_logging(level: str, replica: str | None = None) -> None:
    # A replica of a PostgreSQL cluster names itself on every line (logs are often merged).
    where = f" [{replica.replace('%', '%%')}]" if replica else ""
    logging.basicConfig(
        level=logging.DEBUG if level == "trace" else getattr(logging, level.upper()),
        format=f"%(asctime)s %(levelname)s{where} %(name)s: %(message)s",
    )


def _serve(config_path: str | None, flags: dict[str, Any]) -> None:
    try:
        config: ServerConfig = load(flags=flags, config_path=config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    replica = None
    if config.storage.type == "postgres":
        from sustain.runtime.cluster import replica_id  # noqa: PLC0415

        replica = replica_id(config)
    _configure_logging(config.level, replica)
    try:
        # Imported here: the server stack (uvicorn, JWT: the server extra) is not needed by
        # client commands, and a base install must answer with the extra to install.
        from sustain.server.http_server import run  # noqa: PLC0415

        run(config)
    except ModuleNotFoundError as exc:
        # psycopg is imported only when the postgres store opens: that names its own extra.
        missing = extras.missing("'sustain serve'", exc)
        if missing is None:
            raise
        raise click.ClickException(str(missing)) from None
    except (OSError, ValueError, StoreError, MissingExtraError) as exc:
        # Store lock held, unreadable key file, metrics port in use: one line, exit 1.
        raise click.ClickException(str(exc)) from None


@click.command("serve")
@_server_options
def serve(config_path: str | None, **values: Any) -> None:
    """Run the Sustain server (SQLite at ./sustain.db by default)."""
    _serve(config_path, _flags(values))


@click.command("dev")
@_server_options
def dev(config_path: str | None, **values: Any) -> None:
    """Run a throw-away server: in-memory store, debug operations on."""
    flags = _flags(values)
    if flags.get("storage.type") is None:
        flags["storage.type"] = "memory"
    if flags.get("debug") is None:
        flags["debug"] = True
    _serve(config_path, flags)
