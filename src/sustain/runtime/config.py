"""Server configuration (PROTOCOL.md §7.2), layered.

Layers, lowest first: the defaults written on the Structs below < ``sustain.toml`` (or the
file given with ``--config``) < ``SUSTAIN_*`` environment variables (nested keys joined with
``__``: ``SUSTAIN_SERVER__PORT``, ``SUSTAIN_STORAGE__SQLITE__PATH``) < command-line flags.

Each layer is a nested ``dict``; they are merged key by key and converted once into the
frozen ``ServerConfig`` with msgspec (lax conversion, so ``"8001"`` from the environment
becomes an int).  Environment variables that name no known key are ignored (``SUSTAIN_URL``
belongs to the SDK); unknown keys in the file are errors (a typo should not pass silently).
Every problem surfaces as one ``ConfigError`` whose text is a single line for the user.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_origin

import msgspec

from sustain.errors import SustainError
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import Limits
from sustain.protocol.queues import QueueCreate, check_create

DEFAULT_FILE = "sustain.toml"
ENV_PREFIX = "SUSTAIN_"
STORAGE_TYPES = ("sqlite", "memory", "postgres")
SYNCHRONOUS = ("FULL", "NORMAL")
LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class ConfigError(SustainError):
    """A configuration the server cannot start with; the text is one line for the user."""


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pass


class CorsConfig(_Section, frozen=True):
    allow_origins: tuple[str, ...] = ()


class HttpServerConfig(_Section, frozen=True):
    host: str = "localhost"
    port: int = 8001
    # Loopback by default: a server that holds durable state is not opened to the network by
    # accident; a container says `--bind 0.0.0.0` (docs/configuration.md).
    bind: str = "127.0.0.1"
    url: str | None = None
    shutdown_timeout: int = 10000
    max_body_size: int = 16 * 1024 * 1024
    cors: CorsConfig = CorsConfig()
    # This replica's name in a PostgreSQL cluster (logs, metrics, claims); None: hostname-pid.
    replica_id: str | None = None


class SqliteConfig(_Section, frozen=True):
    path: str = "sustain.db"
    synchronous: str = "FULL"


class PostgresConfig(_Section, frozen=True):
    # postgresql://user:password@host:port/dbname (or a libpq "key=value" string).
    url: str | None = None
    pool_size: int = 10


class StorageConfig(_Section, frozen=True):
    # When no layer sets it, "postgres" if storage.postgres.url is set, else "sqlite" (build).
    type: str = "sqlite"
    sqlite: SqliteConfig = SqliteConfig()
    postgres: PostgresConfig = PostgresConfig()


class AuthSettings(_Section, frozen=True):
    publickey: str | None = None
    iss: str | None = None
    aud: str | None = None


class TasksConfig(_Section, frozen=True):
    retry_timeout: int = 30000


class TimeoutsConfig(_Section, frozen=True):
    # A cap on the timer loop's sleep: it normally wakes at the next deadline.
    poll_interval: int = 1000


class MessagesConfig(_Section, frozen=True):
    # A cap on the outbox loop's sleep: it is normally woken by the writes themselves.
    poll_interval: int = 100
    batch_size: int = 100


class PushAuthConfig(_Section, frozen=True):
    mode: str = "none"
    token: str | None = None
    header: str = "Authorization"


class HttpPushConfig(_Section, frozen=True):
    enabled: bool = True
    concurrency: int = 256
    connect_timeout: int = 10000
    request_timeout: int = 180000
    auth: PushAuthConfig = PushAuthConfig()


class HttpPollConfig(_Section, frozen=True):
    enabled: bool = True
    max_connections: int = 1000
    # Streams one tenant (a token's non-empty prefix claim) may hold on this server, so that
    # one tenant cannot take all of max_connections; admin and prefix "" tokens are not counted.
    max_connections_per_prefix: int = 100
    buffer_size: int = 100
    keepalive_interval: int = 15000


class TransportsConfig(_Section, frozen=True):
    http_push: HttpPushConfig = HttpPushConfig()
    http_poll: HttpPollConfig = HttpPollConfig()


class ClusterConfig(_Section, frozen=True):
    # PostgreSQL replicas: a replica whose heartbeat is older than this is dead (its poll
    # connections stop counting, its claimed messages are claimed again); the heartbeat runs
    # every third of it.  Also how long a poll message nobody can take waits before dropped.
    replica_timeout: int = 10000


class ObservabilityConfig(_Section, frozen=True):
    # Prometheus metrics on the API port's GET /metrics (behind the API's auth when it is on).
    metrics: bool = True
    # A second, unauthenticated listener for a private scrape network; 0 = none.  Not 9090 by
    # default: that is Prometheus's own port, and a second server on one host could not start.
    metrics_port: int = 0


class ProtocolConfig(_Section, frozen=True):
    # Sustain-only protocol extensions.  batch = false answers ``sustain.batch`` with 400
    # "Unknown operation" as a Resonate server does (to test an SDK's fallback).
    batch: bool = True
    # ``sustain.status.set`` / ``.get`` (the status records of failing steps and paused
    # executions); false answers them 400 "Unknown operation", as a Resonate server does.
    status: bool = True


class QueueConfig(_Section, frozen=True):
    """One ``[queues.NAME]`` table: the queue's limits (docs/queues.md), applied at start."""

    concurrency: int | None = None
    per_key_concurrency: int | None = None
    rate: str | None = None
    dedup: bool = False


class LimitsConfig(Limits, frozen=True, forbid_unknown_fields=True):
    """Bounds on one request's work and answer (docs/security.md, "Limits"): the protocol
    layer's ``Limits`` as a configuration section (same fields, same defaults)."""


class ServerConfig(_Section, frozen=True):
    level: str = "info"
    debug: bool = False
    server: HttpServerConfig = HttpServerConfig()
    storage: StorageConfig = StorageConfig()
    auth: AuthSettings = AuthSettings()
    tasks: TasksConfig = TasksConfig()
    timeouts: TimeoutsConfig = TimeoutsConfig()
    messages: MessagesConfig = MessagesConfig()
    transports: TransportsConfig = TransportsConfig()
    cluster: ClusterConfig = ClusterConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    limits: LimitsConfig = LimitsConfig()
    queues: dict[str, QueueConfig] = msgspec.field(default_factory=dict)

    @property
    def server_url(self) -> str:
        """``serverUrl`` in execute messages: ``server.url`` or ``http://{host}:{port}``."""
        return self.server.url or f"http://{self.server.host}:{self.server.port}"

    @property
    def auth_enabled(self) -> bool:
        return self.auth.publickey is not None


# -- layering ------------------------------------------------------------------------------


def _schema(struct: type[msgspec.Struct]) -> dict[str, Any]:
    """Nested key tree of a config Struct: section name -> subtree, leaf name -> its type."""
    tree: dict[str, Any] = {}
    for field in msgspec.structs.fields(struct):
        kind = field.type
        if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            tree[field.name] = _schema(kind)
        else:
            tree[field.name] = kind
    return tree


_SCHEMA = _schema(ServerConfig)


def merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, recursively for nested sections (neither is modified)."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dotted(values: Mapping[str, Any]) -> dict[str, Any]:
    """``{"server.port": 1}`` -> ``{"server": {"port": 1}}``; None values are left out."""
    out: dict[str, Any] = {}
    for dotted, value in values.items():
        if value is None:
            continue
        node = out
        *parents, leaf = dotted.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    return out


def file_layer(path: str | None) -> dict[str, Any]:
    """The TOML file: ``path`` if given (it must exist), else ``sustain.toml`` if present."""
    target = Path(path) if path else Path(DEFAULT_FILE)
    if not target.exists():
        if path:
            raise ConfigError(f"configuration file not found: {path}")
        return {}
    try:
        with target.open("rb") as fh:
            return tomllib.load(fh)
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read configuration file {target}: {exc}") from None


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SUSTAIN_A__B=v`` -> ``{"a": {"b": "v"}}`` for every known key (others ignored)."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node: Any = _SCHEMA
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None or isinstance(node, dict):
            continue
        value: Any = raw
        if get_origin(node) is tuple:  # list-valued (cors origins): comma separated
            value = [item.strip() for item in raw.split(",") if item.strip()]
        target = out
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return out


def build(layers: list[dict[str, Any]]) -> ServerConfig:
    """Merge ``layers`` (lowest first), convert and validate."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = merge(merged, layer)
    storage = merged.get("storage")
    if isinstance(storage, dict) and "type" not in storage:
        postgres = storage.get("postgres")
        if isinstance(postgres, dict) and postgres.get("url"):
            merged = merge(merged, {"storage": {"type": "postgres"}})
    try:
        config = msgspec.convert(merged, ServerConfig, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from None
    return validate(config)


def load(
    flags: Mapping[str, Any] | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> ServerConfig:
    """The effective configuration. ``flags`` and ``defaults`` use dotted keys."""
    return build(
        [
            from_dotted(defaults or {}),
            file_layer(config_path),
            env_layer(os.environ if environ is None else environ),
            from_dotted(flags or {}),
        ]
    )


def validate(config: ServerConfig) -> ServerConfig:
    """Check ranges and choices; normalise case. Raise ``ConfigError`` on the first problem."""
    storage = config.storage
    if storage.type not in STORAGE_TYPES:
        raise ConfigError(
            f"unknown storage type '{storage.type}' (expected one of: {', '.join(STORAGE_TYPES)})"
        )
    if storage.type == "postgres" and not storage.postgres.url:
        raise ConfigError(
            "storage type 'postgres' needs storage.postgres.url "
            "(--postgres URL or SUSTAIN_STORAGE__POSTGRES__URL)"
        )
    sync = storage.sqlite.synchronous.upper()
    if sync not in SYNCHRONOUS:
        raise ConfigError(
            f"invalid storage.sqlite.synchronous '{storage.sqlite.synchronous}' "
            "(expected FULL or NORMAL)"
        )
    level = config.level.lower()
    if level not in LEVELS:
        raise ConfigError(f"invalid level '{config.level}' (expected one of: {', '.join(LEVELS)})")
    checks: list[tuple[str, int, int]] = [
        ("server.port", config.server.port, 0),
        ("observability.metrics_port", config.observability.metrics_port, 0),
        ("server.shutdown_timeout", config.server.shutdown_timeout, 0),
        ("server.max_body_size", config.server.max_body_size, 1),
        *(
            (f"limits.{field}", getattr(config.limits, field), 1)
            for field in config.limits.__struct_fields__
        ),
        ("tasks.retry_timeout", config.tasks.retry_timeout, 1),
        ("timeouts.poll_interval", config.timeouts.poll_interval, 1),
        ("messages.poll_interval", config.messages.poll_interval, 1),
        ("messages.batch_size", config.messages.batch_size, 1),
        ("storage.postgres.pool_size", storage.postgres.pool_size, 1),
        ("cluster.replica_timeout", config.cluster.replica_timeout, 300),
        ("transports.http_push.concurrency", config.transports.http_push.concurrency, 1),
        ("transports.http_push.connect_timeout", config.transports.http_push.connect_timeout, 1),
        ("transports.http_push.request_timeout", config.transports.http_push.request_timeout, 1),
        ("transports.http_poll.max_connections", config.transports.http_poll.max_connections, 1),
        (
            "transports.http_poll.max_connections_per_prefix",
            config.transports.http_poll.max_connections_per_prefix,
            1,
        ),
        ("transports.http_poll.buffer_size", config.transports.http_poll.buffer_size, 1),
        (
            "transports.http_poll.keepalive_interval",
            config.transports.http_poll.keepalive_interval,
            1,
        ),
    ]
    for name, value, low in checks:
        if value < low:
            raise ConfigError(f"invalid {name}: {value} (must be >= {low})")
    for name, port in (
        ("server.port", config.server.port),
        ("observability.metrics_port", config.observability.metrics_port),
    ):
        if port > 65535:
            raise ConfigError(f"invalid {name}: {port} (must be <= 65535)")
    if config.observability.metrics_port and not config.observability.metrics:
        raise ConfigError("observability.metrics_port needs observability.metrics = true")
    mode = config.transports.http_push.auth.mode.lower()
    if mode not in ("none", "bearer"):
        raise ConfigError(
            f"invalid transports.http_push.auth.mode '{mode}' (expected none or bearer)"
        )
    if mode == "bearer" and not config.transports.http_push.auth.token:
        raise ConfigError("transports.http_push.auth.mode = bearer needs a token")
    for name, queue in config.queues.items():
        try:
            check_create(
                QueueCreate(name, queue.concurrency, queue.per_key_concurrency, queue.rate)
            )
        except ProtocolError as exc:
            raise ConfigError(f"invalid queues.{name}: {exc.message}") from None
    return msgspec.structs.replace(
        config,
        level=level,
        storage=msgspec.structs.replace(
            storage, sqlite=msgspec.structs.replace(storage.sqlite, synchronous=sync)
        ),
        transports=msgspec.structs.replace(
            config.transports,
            http_push=msgspec.structs.replace(
                config.transports.http_push,
                auth=msgspec.structs.replace(config.transports.http_push.auth, mode=mode),
            ),
        ),
    )
