"""The call graph of one execution, built from its promises (for ``sustain tree`` and the UI).

Every promise of an execution carries ``resonate:origin`` = the root id and
``resonate:parent`` = its caller (PROTOCOL.md §3.5); the graph links each promise to its
parent, children ordered by ``createdAt``.  A promise whose parent is not among the fetched
promises hangs under the root, so nothing fetched is hidden.

A call under an explicit id of another origin (``ctx.options(id="approve-alice")``, the
factorial example's ``factorial-7``) is a lineage of its own: its tags name no caller.  The
SDK leaves a *link record* in the caller's execution instead, a local promise tagged
``sustain:link = <id>`` (SDK-WIRE §2.1); the graph puts the linked promise, and whatever of
its own execution was fetched, where the link is, and never shows the link itself.

What each node *is* (``kind``) comes from the SDKs' tags (SDK-WIRE §2.1): ``resonate:timer``
a durable sleep, ``resonate:external`` a promise for others to settle, scope ``local`` a
``ctx.run`` step, a ``{origin}:d<16 hex>`` id hanging off its origin a detached call, another
promise with a target or a function an rpc, any other a promise.  The function name is the ``func``
field of the JSON invocation payload in ``param.data`` (base64).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sustain.protocol.values import decode_data

LINK = "sustain:link"
RETRY_OF = "sustain:retry-of"  # protocol/tags.py: the execution a retry started again
_DETACHED = re.compile(r"^(?P<origin>.+):d[0-9a-f]{16}$")


@dataclass
class CallNode:
    promise: dict[str, Any]
    children: list[CallNode] = field(default_factory=list)
    is_top: bool = False
    # The promise's status record (protocol/status.py), when the server keeps one, and
    # the line that says it (``status.summary``; set by whoever fetched the record).
    status: dict[str, Any] | None = None
    summary: str = ""

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
    def kind(self) -> str:
        """``root``, ``sleep``, ``promise``, ``run``, ``detached`` or ``rpc``."""
        tags = self.tags
        if self.is_top:
            return "root"
        if self.is_sleep:
            return "sleep"
        if tags.get("resonate:external") == "true":
            return "promise"
        if tags.get("resonate:scope") == "local":
            return "run"
        match = _DETACHED.match(self.id)
        if match and tags.get("resonate:parent") in (match.group("origin"), self.id):
            return "detached"
        # a param naming a function runs one, even from a client that tags nothing
        if "resonate:target" in tags or self.func is not None:
            return "rpc"
        return "promise"

    @property
    def label(self) -> str:
        """``(sleep)``, ``(promise)``, ``(rpc f)``, ``(run f)``, ``(detached f)`` or ``f``."""
        kind, func = self.kind, self.func
        if kind == "root":
            return func or ""
        if kind in ("sleep", "promise"):
            return f"({kind})"
        return f"({kind} {func})" if func else f"({kind})"

    @property
    def retry_of(self) -> str | None:
        """The failed execution this one retries (``sustain retry``), if any."""
        found = self.tags.get(RETRY_OF)
        return found if isinstance(found, str) and found else None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "func": self.func,
            "promise": self.promise,
            **({"status": self.status} if self.status is not None else {}),
            "children": [c.to_json() for c in self.children],
        }


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


def link_of(promise: dict[str, Any]) -> str | None:
    """The id a link record points at, or None for any other promise."""
    tags = promise.get("tags")
    target = tags.get(LINK) if isinstance(tags, dict) else None
    return target if isinstance(target, str) and target else None


def _order(node: CallNode) -> tuple[int, str]:
    created = node.promise.get("createdAt")
    return (created if isinstance(created, int) else 0, node.id)


def build(root: dict[str, Any], promises: list[dict[str, Any]]) -> CallNode:
    """The graph under ``root`` from the execution's promises (root may be among them)."""
    top = CallNode(root, is_top=True)
    nodes: dict[str, CallNode] = {str(root.get("id")): top}
    links: list[dict[str, Any]] = []
    for promise in promises:
        pid = promise.get("id")
        if link_of(promise) is not None:
            links.append(promise)
        elif isinstance(pid, str) and pid not in nodes:
            nodes[pid] = CallNode(promise)
    # linked id -> (the caller, the link's createdAt: where the call sits among its siblings)
    callers: dict[str, tuple[str, object]] = {}
    for link in sorted(links, key=lambda p: _order(CallNode(p))):
        target = link_of(link)
        caller = link.get("tags", {}).get("resonate:parent")
        if target in nodes and isinstance(caller, str) and target not in callers:
            callers[target] = (caller, link.get("createdAt"))
    for node in nodes.values():
        if node is top:
            continue
        parent_id = node.tags.get("resonate:parent")
        if node.id in callers:
            parent_id = callers[node.id][0]
        parent = nodes.get(parent_id) if isinstance(parent_id, str) else None
        # A self-parent or unknown parent would make a cycle or a lost subtree.
        if parent is None or parent is node:
            parent = top
        parent.children.append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: _position(n, callers))
    _break_cycles(top, nodes)
    return top


def nodes_of(top: CallNode) -> list[CallNode]:
    """Every node of the graph under ``top`` (``top`` first)."""
    found: list[CallNode] = []
    stack = [top]
    while stack:
        node = stack.pop()
        found.append(node)
        stack.extend(node.children)
    return found


def _position(node: CallNode, callers: dict[str, tuple[str, object]]) -> tuple[int, str]:
    """A linked call sorts where its link was made (the promise may be much older)."""
    linked = callers.get(node.id)
    if linked is not None and isinstance(linked[1], int):
        return (linked[1], node.id)
    return _order(node)


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
