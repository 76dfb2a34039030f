"""``sustain worker module:attr --group workers``: run a module's registered functions.

The module is imported (the current directory is on ``sys.path``), ``attr`` (default
``sustain``) must be a ``Sustain``; it joins ``--group`` and serves until SIGTERM or SIGINT,
then stops gracefully: it takes no new work and lets running tasks fulfill, suspend or
release before it exits.  ``--metrics-port N`` serves the worker's Prometheus metrics
(``sustain.sdk.worker_metrics``); ``OTEL_TRACES_EXPORTER=console|otlp`` turns tracing on
(``sustain.runtime.trace_context``).
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

from sustain.cli.errors import CliError
from sustain.errors import MissingExtraError

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain


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
    app: str,
    *,
    group: str | None,
    pid: str | None,
    level: str,
    metrics_port: int,
    metrics_bind: str,
) -> None:
    """Run the functions registered on APP (module:attr) as a worker."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    sustain = load(app)
    sustain.set_identity(group, pid)
    _observability(metrics_port, metrics_bind)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sustain.start()
    click.echo(f"worker {sustain.pid} serving group {sustain.group}", err=True)
    done.wait()
    sustain.stop()
