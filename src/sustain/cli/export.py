"""``sustain export ID``: the history of one execution as JSON, for a replay against new code.

The execution is fetched as ``sustain tree`` fetches it (``tree.execution``: the root, every
promise of its origin, calls of another origin followed through their link records), from
the server (``-S``) or, with ``--store FILE``, from a SQLite file read in this process.  The
document's format is sustain/protocol/history.py's (``"format": "sustain.history"`` with a
``version``); ``sustain.testing.replay.replay(fn, "history.json")`` reads it back.
"""

from __future__ import annotations

import json

import click

from sustain.cli.session import Session, pass_session
from sustain.cli.sources import Requester, StoreFile
from sustain.cli.tree import execution
from sustain.protocol import history
from sustain.runtime.clock import Clock


@click.command("export")
@click.argument("id")
@click.option(
    "--store",
    "store",
    type=click.Path(dir_okay=False),
    default=None,
    help="Read a SQLite database file (not open in a server) instead of the server.",
)
@pass_session
def export(session: Session, id: str, store: str | None) -> None:
    """Print the history of the execution rooted at promise ID as JSON.

    Save it (sustain export ID > history.json) and replay it against new code in a test:
    sustain.testing.replay.replay(fn, "history.json") raises NondeterminismError at the
    first step the new code calls differently.
    """
    source: Requester = StoreFile(store) if store is not None else session
    try:
        root, promises = execution(source, id)
    finally:
        if isinstance(source, StoreFile):
            source.close()
    document = history.dump(root, promises, Clock().now())
    click.echo(json.dumps(document, indent=1, sort_keys=False))
