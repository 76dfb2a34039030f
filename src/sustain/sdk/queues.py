"""``sustain.queue(...)`` and ``sustain.queues``: Sustain's queues from Python
(docs/queues.md), and the tags that put a call on one.

A queue is server state (the ``sustain.queue.*`` operations); putting a call on it is only
tags on its promise (``sustain:queue``, ``sustain:key``, ``sustain:priority``), which is
what ``options(queue=..., key=..., priority=...)`` adds.  Limits are checked here first, with
the server's own checks (protocol/queues.py), so a mistake raises ``QueueError`` before
anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import msgspec

from sustain.errors import QueueError
from sustain.protocol.errors import ProtocolError
from sustain.protocol.queues import QueueCreate, check_create, check_name, check_tags
from sustain.protocol.tags import PRIORITY, QUEUE, QUEUE_KEY
from sustain.sdk.network import Network

Bridge = Callable[[Coroutine[Any, Any, Any]], Any]
Net = Callable[[], Coroutine[Any, Any, Network]]


def queue_tags(queue: str | None, key: str | None, priority: int | None) -> dict[str, str]:
    """The tags of ``options(queue=, key=, priority=)``; ``QueueError`` when malformed."""
    tags: dict[str, str] = {}
    if queue is not None:
        tags[QUEUE] = queue
    if key is not None:
        tags[QUEUE_KEY] = key
    if priority is not None:
        tags[PRIORITY] = str(priority)
    try:
        if tags and queue is not None:
            check_tags(tags)
        elif tags:
            raise ProtocolError(400, "key and priority need a queue")
    except ProtocolError as e:
        raise QueueError(queue or "", e.status, e.message) from None
    return tags


class Queues:
    """Create, read and delete queues; answers are the server's queue records (dicts)."""

    def __init__(self, net: Net, bridge: Bridge) -> None:
        self._net = net
        self._bridge = bridge

    def create(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        per_key_concurrency: int | None = None,
        rate: str | None = None,
        dedup: bool = False,
    ) -> Any:
        """Create the queue, or give it these limits (what it holds stays).  ``dedup``: a
        call with a key while one with that key is pending gets that one's result."""
        request = QueueCreate(name, concurrency, per_key_concurrency, rate, dedup)
        try:
            check_create(request)
        except ProtocolError as e:
            raise QueueError(name, e.status, e.message) from None
        data = msgspec.structs.asdict(request)
        return self._bridge(self._ask("sustain.queue.create", name, data, "queue"))

    def get(self, name: str) -> Any:
        return self._bridge(self._ask("sustain.queue.get", name, {"name": name}, "queue"))

    def list(self) -> Any:
        return self._bridge(self._ask("sustain.queue.list", "", {}, "queues"))

    def delete(self, name: str) -> None:
        self._bridge(self._ask("sustain.queue.delete", name, {"name": name}, None))

    async def _ask(self, kind: str, name: str, data: dict[str, Any], field: str | None) -> Any:
        if name:
            try:
                check_name(name)
            except ProtocolError as e:
                raise QueueError(name, e.status, e.message) from None
        answer = await (await self._net()).request(kind, data)
        if answer.status != 200:
            raise QueueError(name, answer.status, str(answer.data))
        return answer.data[field] if field is not None else None
