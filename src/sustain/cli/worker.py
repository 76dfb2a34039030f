"""``sustain worker module:attr --group workers``: run a module's registered functions.

The module is imported (the current directory is on ``sys.path``), ``attr`` (default
``sustain``) must be a ``Sustain``; it joins ``--group`` and serves until SIGTERM or SIGINT,
then stops gracefully: it takes no new work and lets running tasks fulfill, suspend or
release before it exits.
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

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain


def load(app: str) -> Sustain:
    # imported here: the SDK pulls in the embedded server, which other commands never need
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


@click.command("worker")
@click.argument("app")
@click.option("--group", default=None, help="Worker group to join (default: the app's).")
@click.option("--pid", default=None, help="Process id (default: the app's, random).")
@click.option("--level", default="info", help="Log level.")
def worker(app: str, group: str | None, pid: str | None, level: str) -> None:
    """Run the functions registered on APP (module:attr) as a worker."""
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    sustain = load(app)
    sustain.set_identity(group, pid)
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sustain.start()
    click.echo(f"worker {sustain.pid} serving group {sustain.group}", err=True)
    done.wait()
    sustain.stop()
