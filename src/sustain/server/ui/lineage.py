"""The retry lineage on an execution's page: the execution it retries (its
``sustain:retry-of`` tag, engine/retry.py) and the executions that retry it."""

from __future__ import annotations

from sustain.protocol.tags import RETRY_OF
from sustain.server.ui.html import esc, q
from sustain.server.ui.queries import ExecutionDetail


def link(id: str) -> str:
    return f'<a href="/ui/execution?id={q(id)}"><code>{esc(id)}</code></a>'


def lineage(detail: ExecutionDetail) -> str:
    """The line "Retry of X · retried as Y, Z", or nothing for an execution of neither."""
    parts = []
    retry_of = detail.root.tags.get(RETRY_OF)
    if retry_of:
        parts.append(f"Retry of {link(retry_of)}")
    if detail.retries:
        parts.append("retried as " + ", ".join(link(id) for id in detail.retries))
    return f"<p class=lineage>{' · '.join(parts)}</p>" if parts else ""
