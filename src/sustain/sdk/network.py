"""The ``Network`` seam: how the SDK reaches a durable promise store.

Two implementations: ``LocalNetwork`` (embedded mode: the engine, a store and the server's
background loops run in this process; no sockets) and ``RemoteNetwork`` (``POST /`` and the
SSE poll stream of a Sustain or Resonate server).  The replay runtime, handles and workers
see only this protocol, so they behave the same in both modes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from sustain.errors import SustainError


class Answer(msgspec.Struct, frozen=True):
    """A protocol answer: ``head.status`` and ``data`` decoded to builtins (dict, list, str...)."""

    status: int
    data: Any


MessageHandler = Callable[[dict[str, Any]], None]


class Network(Protocol):
    async def start(self) -> None:
        """Open connections and start background work (idempotent)."""

    async def stop(self) -> None:
        """Stop listening, cancel retries in progress and release every resource."""

    async def request(self, kind: str, data: Mapping[str, Any], durable: bool = True) -> Answer:
        """Send one protocol request and return its answer, whatever its status.

        Transport failures and 503 answers are retried with backoff (1 s doubling, capped
        at 30 s) until ``stop()``; after ``stop()`` it raises ``NetworkStopped``.
        ``durable=False`` lets an embedded store answer once the write is committed, before
        it is synced to disk; only for answers that stay inside this process (a local step's
        checkpoint).  A server always syncs, so a remote network ignores it.
        """

    def listen(self, group: str, pid: str, on_message: MessageHandler) -> None:
        """Deliver every message for this process (``poll://any@group``,
        ``poll://any@group/pid``, ``poll://uni@group/pid``) to ``on_message``, called on the
        event loop with the decoded message (``{"kind", "head", "data"}``).  A remote network
        keeps one SSE stream per (group, pid) and reconnects with backoff."""

    async def unlisten(self, group: str, pid: str) -> None:
        """Stop receiving the messages of ``(group, pid)``: its stream is closed, so the
        server sends the group's work to the other members (a stopping worker)."""

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after the message stream reconnects (messages may have been
        lost meanwhile: listeners are registered again, pending handles re-checked)."""

    def anycast(self, group: str) -> str:
        """The address of any member of ``group``: ``poll://any@group``."""

    def unicast(self, group: str, pid: str) -> str:
        """The address of this process: ``poll://uni@group/pid``."""


class NetworkStopped(SustainError):
    """The network was stopped while a request was waiting or retrying."""
