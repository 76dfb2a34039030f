"""The call graph of one execution, for assertions (``env.tree(id)``).

The same graph ``sustain tree`` draws (protocol/callgraph.py): the root, and every promise
tagged ``resonate:origin = <root>``, read through the SDK's network.  Calls made under an
explicit id of another execution appear as their link; their own tree is ``env.tree`` of
that id.
"""

from __future__ import annotations

from typing import Any

from sustain.errors import ServerError
from sustain.protocol import callgraph
from sustain.sdk.network import Network

PAGE = 100


async def _read(network: Network, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    answer = await network.request(kind, data)
    if answer.status != 200:
        raise ServerError(answer.status, str(answer.data), kind)
    found: dict[str, Any] = answer.data
    return found


async def fetch_tree(network: Network, id: str) -> callgraph.CallNode:
    root = (await _read(network, "promise.get", {"id": id}))["promise"]
    promises: list[dict[str, Any]] = []
    query: dict[str, Any] = {"tags": {"resonate:origin": id}, "limit": PAGE}
    while True:
        page = await _read(network, "promise.search", query)
        promises.extend(p for p in page.get("promises") or [] if p.get("id") != id)
        cursor = page.get("cursor")
        if not cursor or cursor == query.get("cursor"):
            return callgraph.build(root, promises)
        query = {**query, "cursor": cursor}
