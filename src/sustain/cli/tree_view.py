"""``sustain tree``'s drawing: one line per promise of a call graph (protocol/callgraph.py),
with its kind, state, duration, a sleep's deadline and a failing step's summary."""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from sustain.cli import output
from sustain.cli.durations import format_duration
from sustain.protocol.callgraph import CallNode

STATE_ICON = {
    "pending": "🟡",
    "resolved": "🟢",
    "rejected": "🔴",
    "rejected_canceled": "⚪",
    "rejected_timedout": "⏰",
}
KIND_STYLE = {
    "root": "bold cyan",
    "run": "cyan",
    "rpc": "magenta",
    "detached": "blue",
    "sleep": "yellow",
    "promise": "green",
}


def _node_text(node: CallNode) -> Text:
    p = node.promise
    state = str(p.get("state", "?"))
    text = Text(f"{STATE_ICON.get(state, '?')} ")
    text.append(node.id, style="bold")
    if node.label:
        text.append(f" {node.label}", style=KIND_STYLE.get(node.kind, "cyan"))
    if node.is_top and node.retry_of is not None:
        text.append(f" (retry of {node.retry_of})", style="magenta")
    text.append(" ")
    text.append(state, style=output.STATE_STYLE.get(state, ""))
    created, settled, timeout = p.get("createdAt"), p.get("settledAt"), p.get("timeoutAt")
    if isinstance(created, int) and isinstance(settled, int):
        text.append(f" {format_duration(settled - created)}", style="dim")
    if node.is_sleep and state == "pending":
        text.append(f" until {output.fmt_time(timeout)}", style="dim")
    elif node.is_sleep:
        text.append(f" (deadline {output.fmt_time(timeout)})", style="dim")
    if node.summary:
        text.append(f" — {node.summary}", style="yellow" if state == "pending" else "dim")
    return text


def tree(root: CallNode, retries: list[str] | None = None) -> None:
    top = Tree(_node_text(root))
    stack = [(root, top)]
    while stack:
        node, branch = stack.pop()
        for child in node.children:
            stack.append((child, branch.add(_node_text(child))))
    output.console.print(top)
    if retries:
        output.console.print(f"retried as {', '.join(retries)}", style="magenta")
