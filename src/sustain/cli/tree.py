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

from sustain.cli import status, tree_view
from sustain.cli.session import Session, json_option, pass_session
from sustain.cli.sources import Requester, search
from sustain.protocol import callgraph
from sustain.protocol.tags import is_prefixed_by

PAGE = 100
MAX_EXECUTIONS = 200  # linked executions followed from one tree (a chain, or a fan-out)


def fetch_execution(session: Requester, root_id: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = {"tags": {"resonate:origin": root_id}, "limit": PAGE}
    return [p for p in search(session, "promise.search", data, "promises") if isinstance(p, dict)]


def _get(session: Requester, id: str) -> dict[str, Any] | None:
    answer = session.request("promise.get", {"id": id}, ok=(200, 404))
    found = answer.get("promise") if isinstance(answer, dict) else None
    return found if isinstance(found, dict) else None


def follow_links(session: Requester, promises: list[dict[str, Any]], seen: set[str]) -> None:
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
    An execution started by `sustain retry` names the one it retries, and the retries
    of this one are listed below the tree.
    --json prints the graph as nested {id, kind, func, promise, children}, with
    retryOf and retries at the top.
    """
    root, promises = execution(session, id)
    graph = callgraph.build(root, promises)
    nodes = callgraph.nodes_of(graph)
    records = status.fetch(session, [node.id for node in nodes])
    for node in nodes:
        node.status = records.get(node.id)
        node.summary = status.summary(node.status, node.promise.get("state"))
    # the executions `sustain retry` started from this one (they link back with a tag)
    query = {"tags": {callgraph.RETRY_OF: id}, "limit": PAGE}
    page = session.request("promise.search", query, ok=(200, 403))  # 403: not for this token
    found = page.get("promises") if isinstance(page, dict) else None
    retries = [str(p.get("id")) for p in found or [] if isinstance(p, dict)]
    answer = {**graph.to_json(), "retryOf": graph.retry_of, "retries": retries}
    session.show(answer, lambda _: tree_view.tree(graph, retries))


def execution(source: Requester, id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The promise ``id`` and every promise of the execution below it, links followed."""
    answer = source.request("promise.get", {"id": id})
    found = answer.get("promise") if isinstance(answer, dict) else None
    root: dict[str, Any] = found if isinstance(found, dict) else {"id": id}
    tags = root.get("tags")
    origin = tags.get("resonate:origin") if isinstance(tags, dict) else None
    if isinstance(origin, str) and origin and origin != id:
        promises = [
            p
            for p in fetch_execution(source, origin)
            if isinstance(p.get("id"), str) and p["id"] != id and is_prefixed_by(p["id"], id)
        ]
    else:
        promises = fetch_execution(source, id)
    follow_links(source, promises, {id})
    return root, promises
