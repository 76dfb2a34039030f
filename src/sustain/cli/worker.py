"""``sustain worker module:attr --group workers``: run a module's registered functions.

The module is imported (the current directory is on ``sys.path``), ``attr`` (default
``sustain``) must be a ``Sustain``; it joins ``--group`` and serves until SIGTERM or SIGINT,
then stops gracefully: it takes no new work and lets running tasks fulfill, suspend or
release before it exits.  ``--metrics-port N`` serves the worker's Prometheus metrics
(``sustain.sdk.worker_metrics``); ``OTEL_TRACES_EXPORTER=console|otlp`` turns tracing on
(``sustain.runtime.trace_context``).

Where it connects: ``-S/--server`` (or ``SUSTAIN_SERVER`` / ``SUSTAIN_URL``) given
explicitly wins over whatever the app built: the variable is set before the import (so a
plain ``Sustain()`` goes remote and opens no ``./sustain.db``) and an app built for another
place (embedded, or another URL) is switched with ``Sustain.connect`` before it starts.
Without them the app's own choice stands.  The banner on stderr says the mode, the URL or
the database file, the group, the pid and the functions with their versions.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from sustain.cli.errors import CliError
from sustain.errors import MissingExtraError

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain


def explicit_server(ctx: click.Context) -> str | None:
    """The root ``-S/--server`` when the user gave it (flag or variable), else None."""
    root = ctx.find_root()
    source = root.get_parameter_source("server")
    if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
        server = root.params.get("server")
        return server if isinstance(server, str) else None
    return None


def where(sustain: Sustain) -> str:
    """``remote http://...`` or ``embedded <file>`` for the banner."""
    # imported here for the same reason as in ``load``
    from sustain.sdk.local import LocalNetwork  # noqa: PLC0415
    from sustain.sdk.remote import RemoteNetwork  # noqa: PLC0415

    network = sustain.network
    if isinstance(network, RemoteNetwork):
        return f"remote {network.url}"
    if isinstance(network, LocalNetwork):
        sqlite = network.config.storage.sqlite
        if network.config.storage.type == "memory" or sqlite is None:
            return "embedded (in memory)"
        return f"embedded {os.path.abspath(sqlite.path)}"
    return f"custom network {type(network).__name__}"


def banner(sustain: Sustain) -> str:
    functions = sustain.functions()
    listed = ", ".join(
        f"{name} v{','.join(str(v) for v in versions)}" for name, versions in functions.items()
    )
    return (
        f"worker {sustain.pid} serving group {sustain.group} ({where(sustain)}); "
        f"functions: {listed or 'none registered'}"
    )


def load(app: str) -> Sustain:
    # imported here: the SDK pulls in the embedded runtime, which other commands never need
    from sustain.sdk.client import Sustain  # noqa: PLC0415

    module_name, _, attr = app.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attr or "sustain", None)
    if not isinstance(found, Sustain):
        raise CliError(f"{app!r} is not a Sustain instance")
    return found


def _observability(metrics_port: int, metrics_bind: str) -> None:
    """Worker metrics (``--metrics-port``) and tracing (``OTEL_TRACES_EXPORTER``), or one
    ``Error:`` line when they cannot start."""
    from sustain.runtime import trace_context  # noqa: PLC0415
    from sustain.sdk import worker_metrics  # noqa: PLC0415

    try:
        trace_context.configure_from_env()
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if metrics_port:
        try:
            worker_metrics.enable(metrics_port, metrics_bind)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise CliError(
                f"cannot serve metrics on {metrics_bind}:{metrics_port}: {reason}"
            ) from None
        except MissingExtraError as exc:
            raise CliError(str(exc)) from None


@click.command("worker")
@click.pass_context
@click.argument("app")
@click.option("--group", default=None, help="Worker group to join (default: the app's).")
@click.option("--pid", default=None, help="Process id (default: the app's, random).")
@click.option("--level", default="info", help="Log level.")
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    default=0,
    help="Serve Prometheus /metrics of this worker on this port (0: off).",
)
@click.option("--metrics-bind", default="127.0.0.1", help="Address of the metrics port.")
def worker(
    ctx: click.Context,
    app: str,
    *,
    group: str | None,
    pid: str | None,
    level: str,
    metrics_port: int,
    metrics_bind: str,
) -> None:
    """Run the functions registered on APP (module:attr) as a worker.

    -S/--server (or SUSTAIN_URL) decides where it connects, whatever APP's Sustain(...) was
    built with; without it, APP's own choice stands (Sustain() alone is embedded).
    """
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    server = explicit_server(ctx)
    token = ctx.find_root().params.get("token")
    if server is not None:
        os.environ["SUSTAIN_URL"] = server  # a plain Sustain() in APP goes remote
        if isinstance(token, str) and token:
            os.environ["SUSTAIN_TOKEN"] = token
    sustain = load(app)
    if server is not None and where(sustain) != f"remote {server.rstrip('/')}":
        try:
            sustain.connect(server, token if isinstance(token, str) and token else None)
        except RuntimeError as exc:
            raise CliError(f"{app!r} cannot be pointed at {server}: {exc}") from None
    sustain.set_identity(group, pid)
    _observability(metrics_port, metrics_bind)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sustain.start()
    click.echo(banner(sustain), err=True)
    done.wait()
    sustain.stop()
