"""The call graph of one execution, built from its promises (for ``sustain tree`` and the UI).

Every promise of an execution carries ``resonate:origin`` = the root id and
``resonate:parent`` = its caller (PROTOCOL.md §3.5); the graph links each promise to its
parent, children ordered by ``createdAt``.  A promise whose parent is not among the fetched
promises hangs under the root, so nothing fetched is hidden.

What each node *is* comes from conventions of the SDKs, decoded where possible:
``resonate:timer = "true"`` is a durable sleep; ``resonate:scope`` ``global`` is a remote
call (rpc), ``local`` a local one (run); the function name is the ``func`` field of the JSON
invocation payload in ``param.data`` (base64).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sustain.protocol.values import decode_data


@dataclass
class CallNode:
    promise: dict[str, Any]
    children: list[CallNode] = field(default_factory=list)

    @property
    def id(self) -> str:
        return str(self.promise.get("id", ""))

    @property
    def tags(self) -> dict[str, Any]:
        tags = self.promise.get("tags")
        return tags if isinstance(tags, dict) else {}

    @property
    def is_sleep(self) -> bool:
        return self.tags.get("resonate:timer") == "true"

    @property
    def func(self) -> str | None:
        return function_name(self.promise)

    @property
    def label(self) -> str:
        """``(sleep)``, ``(rpc f)``, ``(run f)``, ``f`` or ``""``."""
        if self.is_sleep:
            return "(sleep)"
        func = self.func
        scope = self.tags.get("resonate:scope")
        if scope == "global":
            return f"(rpc {func})" if func else "(rpc)"
        if scope == "local":
            return f"(run {func})" if func else "(run)"
        return func or ""

    def to_json(self) -> dict[str, Any]:
        return {"promise": self.promise, "children": [c.to_json() for c in self.children]}


def function_name(promise: dict[str, Any]) -> str | None:
    param = promise.get("param")
    text = decode_data(param.get("data")) if isinstance(param, dict) else None
    if text is None:
        return None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):  # stored data is anyone's: nested too deep, too
        return None
    func = payload.get("func") if isinstance(payload, dict) else None
    return func if isinstance(func, str) and func else None


def _order(node: CallNode) -> tuple[int, str]:
    created = node.promise.get("createdAt")
    return (created if isinstance(created, int) else 0, node.id)


def build(root: dict[str, Any], promises: list[dict[str, Any]]) -> CallNode:
    """The graph under ``root`` from the execution's promises (root may be among them)."""
    nodes: dict[str, CallNode] = {str(root.get("id")): CallNode(root)}
    for promise in promises:
        pid = promise.get("id")
        if isinstance(pid, str) and pid not in nodes:
            nodes[pid] = CallNode(promise)
    top = nodes[str(root.get("id"))]
    for node in nodes.values():
        if node is top:
            continue
        parent_id = node.tags.get("resonate:parent")
        parent = nodes.get(parent_id) if isinstance(parent_id, str) else None
        # A self-parent or unknown parent would make a cycle or a lost subtree.
        if parent is None or parent is node:
            parent = top
        parent.children.append(node)
    for node in nodes.values():
        node.children.sort(key=_order)
    _break_cycles(top, nodes)
    return top


def _break_cycles(top: CallNode, nodes: dict[str, CallNode]) -> None:
    """Re-hang under the root any node not reachable from it (a parent cycle: a→b→a)."""
    seen: set[int] = set()
    stack = [top]
    while stack:
        node = stack.pop()
        seen.add(id(node))
        stack.extend(c for c in node.children if id(c) not in seen)
    orphans = [n for n in nodes.values() if id(n) not in seen]
    # Every child of an unreachable node is unreachable too: hang them all flat under the root.
    for orphan in orphans:
        orphan.children = []
    if orphans:
        top.children.extend(orphans)
        top.children.sort(key=_order)
