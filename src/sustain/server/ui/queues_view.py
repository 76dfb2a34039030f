"""The UI's Queues page: every queue's limits, what runs and waits (by priority) and its
counters, refreshed live (docs/queues.md)."""

from __future__ import annotations

from sustain.engine.queue_ops import QueueInfo
from sustain.server.ui.html import esc, live, page, when


def _limit(value: object) -> str:
    return "—" if value is None else esc(value)


def queues_table(infos: list[QueueInfo]) -> str:
    rows = []
    for info in infos:
        waiting = ", ".join(
            f"{n} at {esc(p)}"
            for p, n in sorted(info.waitingByPriority.items(), key=lambda i: int(i[0]))
        )
        rows.append(
            f'<tr data-id="{esc(info.name)}"><td>{esc(info.name)}</td>'
            f"<td>{_limit(info.concurrency)}</td><td>{_limit(info.perKeyConcurrency)}</td>"
            f"<td>{_limit(info.rate)}</td><td>{info.running}</td>"
            f"<td>{info.waiting}{f' <span class=muted>({waiting})</span>' if waiting else ''}</td>"
            f"<td>{when(info.nextDispatchAt) or '—'}</td>"
            f"<td>{info.dispatched}</td><td>{info.meanWaitMs} ms</td></tr>"
        )
    if not rows:
        rows.append("<tr><td colspan=9 class=empty>No queues.</td></tr>")
    return (
        "<table class=queues><thead><tr><th>Queue</th><th>Concurrency</th><th>Per key</th>"
        "<th>Rate</th><th>Running</th><th>Waiting (by priority)</th><th>Next by rate</th>"
        f"<th>Dispatched</th><th>Mean wait</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def queues_page(infos: list[QueueInfo]) -> str:
    body = (
        "<h1>Queues</h1><p class=muted>Flow control: a task on a queue is sent to a worker only"
        " when its queue has room. <code>sustain queues get NAME</code> shows the same.</p>"
        + live("/ui/queues?fragment=1", 2000, queues_table(infos))
    )
    return page("Queues", "queues", body)
