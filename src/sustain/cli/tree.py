"""``sustain tree``: draw the call graph of an execution (PROTOCOL.md §7.3).

The root is fetched with ``promise.get`` (an invoked root need not carry its own origin
tag); the rest of the execution is every promise tagged ``resonate:origin = <root>``, paged
through ``promise.search``.  Asked for a promise inside an execution (its origin is another
id), the tree is the part of that execution below it: the promises whose ids extend
``<id>.`` (the SDKs' hierarchical id convention).

Calls of another origin (an explicit id: ``factorial-7`` called by ``factorial-8``) are
found through the link records the SDK leaves in the caller's execution (``callgraph``):
each linked promise is fetched, and so is its own execution, and so on down the chain, up
to ``MAX_EXECUTIONS``.  The graph itself is built by ``callgraph``.
"""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import output, status
from sustain.cli.session import Session, json_option, pass_session
from sustain.protocol import callgraph
from sustain.protocol.tags import is_prefixed_by

PAGE = 100
MAX_PAGES = 1_000  # 100,000 promises: a guard against a server that never ends a search
MAX_EXECUTIONS = 200  # linked executions followed from one tree (a chain, or a fan-out)


def fetch_execution(session: Session, root_id: str) -> list[dict[str, Any]]:
    promises: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        data: dict[str, Any] = {"tags": {"resonate:origin": root_id}, "limit": PAGE}
        if cursor is not None:
            data["cursor"] = cursor
        page = session.request("promise.search", data)
        items = page.get("promises") if isinstance(page, dict) else None
        promises.extend(p for p in items or [] if isinstance(p, dict))
        next_cursor = page.get("cursor") if isinstance(page, dict) else None
        if not isinstance(next_cursor, str) or next_cursor == cursor:
            break
        cursor = next_cursor
    return promises


def _get(session: Session, id: str) -> dict[str, Any] | None:
    answer = session.request("promise.get", {"id": id}, ok=(200, 404))
    found = answer.get("promise") if isinstance(answer, dict) else None
    return found if isinstance(found, dict) else None


def follow_links(session: Session, promises: list[dict[str, Any]], seen: set[str]) -> None:
    """Append to ``promises`` every linked promise and its execution, transitively."""
    i = 0
    while i < len(promises):
        target = callgraph.link_of(promises[i])
        i += 1
        if target is None or target in seen or len(seen) >= MAX_EXECUTIONS:
            continue
        seen.add(target)
        linked = _get(session, target)
        if linked is None:
            continue
        promises.append(linked)
        tags = linked.get("tags")
        origin = tags.get("resonate:origin") if isinstance(tags, dict) else None
        if origin in (None, target):  # a root of its own: its execution comes along
            promises.extend(p for p in fetch_execution(session, target) if p.get("id") != target)


@click.command("tree")
@click.argument("id")
@json_option
@pass_session
def tree(session: Session, id: str) -> None:
    """Show the call graph of the execution rooted at promise ID.

    Each node shows its state, its kind ((run f) a local step, (rpc f) a remote call,
    (detached f), (sleep), (promise) one settled from outside) and how long it took; a
    step that failed shows its attempts, last error and next retry, a paused execution why.
    Calls made under an explicit id of another execution are followed, so a chain of
    rpcs across workers (factorial-8 -> factorial-7 -> ...) is drawn whole.
    --json prints the graph as nested {id, kind, func, promise, children}.
    """
    answer = session.request("promise.get", {"id": id})
    found = answer.get("promise") if isinstance(answer, dict) else None
    root: dict[str, Any] = found if isinstance(found, dict) else {"id": id}
    tags = root.get("tags")
    origin = tags.get("resonate:origin") if isinstance(tags, dict) else None
    if isinstance(origin, str) and origin and origin != id:
        promises = [
            p
            for p in fetch_execution(session, origin)
            if isinstance(p.get("id"), str) and p["id"] != id and is_prefixed_by(p["id"], id)
        ]
    else:
        promises = fetch_execution(session, id)
    follow_links(session, promises, {id})
    graph = callgraph.build(root, promises)
    nodes = callgraph.nodes_of(graph)
    records = status.fetch(session, [node.id for node in nodes])
    for node in nodes:
        node.status = records.get(node.id)
        node.summary = status.summary(node.status, node.promise.get("state"))
    session.show(graph.to_json(), lambda _: output.tree(graph))
