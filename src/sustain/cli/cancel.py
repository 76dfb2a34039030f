"""``sustain cancel ID``: cancel an execution tree (the walk is protocol/cancel.py).

``sustain promises cancel ID`` settles one promise; this command cancels the execution ``ID``
and every pending descendant, in any group, so that their workers stop them and whoever
awaits them gets ``CanceledError``.  An execution that is already settled is left as it is
(exit 0, with a note saying so).
"""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import output
from sustain.cli.errors import ErrorAnswer
from sustain.cli.session import Session, json_option, pass_session
from sustain.protocol.cancel import CancelFailed, CancelReport, drive, walk


@click.command("cancel")
@click.argument("id")
@click.option(
    "--detached", is_flag=True, help="Also cancel the detached calls under ID (left by default)."
)
@json_option
@pass_session
def cancel(session: Session, id: str, detached: bool) -> None:
    """Cancel the execution ID and its pending descendants.

    \b
    Example:
      sustain cancel order-42
    """
    try:
        report = drive(walk(id, detached=detached), session.client.call)
    except CancelFailed as exc:
        message = exc.message if exc.status != 404 else f"{exc.message}: {id}"
        raise ErrorAnswer(exc.status, message) from None
    session.show(_data(report), output.cancel_report)


def _data(report: CancelReport) -> dict[str, Any]:
    return {
        "id": report.id,
        "state": report.state,
        "canceled": list(report.canceled),
        "message": report.message(),
    }
