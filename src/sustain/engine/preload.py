"""Preload (PROTOCOL.md §2.0): the promises of a task's branch, shipped with its claim."""

from __future__ import annotations

from sustain.protocol.records import Promise
from sustain.protocol.tags import BRANCH
from sustain.store.tx import Tx


def preload(tx: Tx, promise: Promise) -> list[Promise]:
    """Every promise with the same ``resonate:branch`` tag as ``promise``, except itself, by
    id.  No tag, or an empty one (§0 item 7), means no branch: ``[]``."""
    branch = promise.tags.get(BRANCH)
    if not branch:
        return []
    return [p for p in tx.branch_promises(branch) if p.id != promise.id]
