"""The status records of promises (protocol/status.py) on the UI's pages: a line on each node
of the call tree, a block with the traceback in each step's details and on the promise page,
and a notice at the top of a paused execution."""

from __future__ import annotations

from sustain.protocol import status
from sustain.protocol.status import Status
from sustain.server.ui.html import esc, when


def line(record: Status | None, state: str, now: int) -> str:
    """The one-line summary (``status.summary``), or "" without a record."""
    if record is None:
        return ""
    css = "status-line error" if state == "pending" else "status-line muted"
    return f" <span class='{css}'>{esc(status.summary(record, state, now))}</span>"


def block(record: Status | None, state: str, now: int) -> str:
    """Attempts, last error, next retry, pause reason and traceback ("" without a record)."""
    if record is None:
        return ""
    rows = [
        ("summary", esc(status.summary(record, state, now))),
        ("attempts", str(record.attempts)),
    ]
    if record.paused:
        rows.append(("paused", esc(record.paused)))
    if record.errorType:
        rows.append(("last error", f"<b>{esc(record.errorType)}</b>: {esc(record.message)}"))
    if record.nextRetryAt is not None:
        rows.append(("next retry", when(record.nextRetryAt)))
    rows.append(("updated", when(record.updatedAt)))
    table = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    trace = f"<pre class=traceback>{esc(record.traceback)}</pre>" if record.traceback else ""
    return f"<div class=status><h4>Status</h4><table class=tags>{table}</table>{trace}</div>"


def notice(record: Status | None, state: str, now: int) -> str:
    """A banner for an execution paused now ("" otherwise)."""
    why = None if record is None else status.pause_of(record, state, now)
    if why is None:
        return ""
    return (
        f"<p class='notice paused'><b>Paused</b>: {esc(why)}. It stays pending; a worker "
        "running fixed code resumes it.</p>"
    )
