"""The exported history of one execution (``sustain export``), and reading it back.

A history is one JSON object::

    {"format": "sustain.history", "version": 1, "root": "<id>", "exportedAt": <ms>,
     "promises": [<promise record>, ...]}

``promises`` holds the root's own record first, then every promise of its execution as the
server stores them (PROTOCOL.md §3: ``id``, ``state``, ``param``, ``value``, ``tags``,
``timeoutAt``, ``createdAt``, ``settledAt``), in call-graph order (callgraph.py), including
the link records the SDK leaves for calls under an explicit id and the linked promises
themselves.  Records are copied verbatim: a history is what the store held, nothing
decoded, so it replays exactly what a worker would replay.

``version`` is this format's version; a reader refuses a version it does not know rather
than misreading it.  Extra top-level fields are ignored (room for later additions).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sustain.protocol import callgraph

FORMAT = "sustain.history"
VERSION = 1


class HistoryFormatError(ValueError):
    """The document is not a history this version can read (the message says why)."""


@dataclass(frozen=True)
class History:
    root: dict[str, Any]
    promises: dict[str, dict[str, Any]]  # id -> record, the root included

    @property
    def root_id(self) -> str:
        return str(self.root["id"])


def dump(root: dict[str, Any], promises: list[dict[str, Any]], exported_at: int) -> dict[str, Any]:
    """The JSON document of the execution under ``root`` (``promises`` may include it)."""
    graph = callgraph.build(root, [p for p in promises if p.get("id") != root.get("id")])
    ordered: list[dict[str, Any]] = [root]
    stack = list(reversed(graph.children))
    while stack:  # depth first, children in call order: the order the calls were made
        node = stack.pop()
        ordered.append(node.promise)
        stack.extend(reversed(node.children))
    seen = {str(p.get("id")) for p in ordered}
    # Link records are not nodes of the graph; a replay needs them (they name the slot).
    ordered += [p for p in promises if callgraph.link_of(p) and str(p.get("id")) not in seen]
    return {
        "format": FORMAT,
        "version": VERSION,
        "root": root.get("id"),
        "exportedAt": exported_at,
        "promises": ordered,
    }


def parse(document: Any) -> History:
    """A ``History`` from the decoded JSON document, or ``HistoryFormatError``."""
    if not isinstance(document, Mapping):
        raise HistoryFormatError("a history is a JSON object")
    if document.get("format") != FORMAT:
        raise HistoryFormatError(f"not a Sustain history (format is not {FORMAT!r})")
    version = document.get("version")
    if version != VERSION:
        raise HistoryFormatError(
            f"history format version {version!r} is not supported (this Sustain reads {VERSION})"
        )
    root_id = document.get("root")
    records = document.get("promises")
    if not isinstance(root_id, str) or not root_id:
        raise HistoryFormatError("'root' must be the root promise's id")
    if not isinstance(records, list):
        raise HistoryFormatError("'promises' must be a list of promise records")
    promises: dict[str, dict[str, Any]] = {}
    for i, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise HistoryFormatError(f"promises[{i}] is not a promise record with an id")
        if record.get("state") not in ("pending", "resolved", "rejected", "rejected_canceled",
                                        "rejected_timedout"):  # fmt: skip
            raise HistoryFormatError(f"promises[{i}] ({record['id']!r}) has no valid state")
        promises[record["id"]] = record
    root = promises.get(root_id)
    if root is None:
        raise HistoryFormatError(f"the root promise {root_id!r} is not among 'promises'")
    return History(root, promises)


def loads(text: str | bytes) -> History:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise HistoryFormatError(f"not JSON: {exc}") from None
    return parse(document)
