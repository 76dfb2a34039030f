"""The ``Network`` seam: how the SDK reaches a durable promise store.

Two implementations: ``LocalNetwork`` (embedded mode: the engine, a store and the server's
background loops run in this process; no sockets) and ``RemoteNetwork`` (``POST /`` and the
SSE poll stream of a Sustain or Resonate server).  The replay runtime, handles and workers
see only this protocol, so they behave the same in both modes.

What the two implementations share is here too: the retry ladder, a stop-aware sleep, poll
addresses and the fan-out of one message to its handlers.  The ladder is SDK-WIRE.md §3.4's:
wait 1 s, 2 s, 4 s ... capped at 30 s between attempts, forever, until the network stops.
``rest`` is the sleep between attempts: it returns early (True) when the network stops, so
``stop()`` never waits for a backoff to run out.

Handlers run on the event loop through ``call_soon``: the code that received the message (the
outbox loop in embedded mode, the SSE reader remotely) never runs user code itself, so a
failing or slow handler cannot kill or stall delivery.  A handler that raises is logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import msgspec

from sustain.errors import SustainError
from sustain.runtime.clock import Clock


class Answer(msgspec.Struct, frozen=True):
    """A protocol answer: ``head.status`` and ``data`` decoded to builtins (dict, list, str...)."""

    status: int
    data: Any


MessageHandler = Callable[[dict[str, Any]], None]
# The functions and versions this process serves, asked again at each (re)connect (a
# function registered later is announced by the next one): protocol/versions.py.
Announce = Callable[[], Mapping[str, list[int]]]


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

    def listen(
        self, group: str, pid: str, on_message: MessageHandler, functions: Announce | None = None
    ) -> None:
        """Deliver every message for this process (``poll://any@group``,
        ``poll://any@group/pid``, ``poll://uni@group/pid``) to ``on_message``, called on the
        event loop with the decoded message (``{"kind", "head", "data"}``).  A remote network
        keeps one SSE stream per (group, pid) and reconnects with backoff.  ``functions``
        announces what this process serves: executions pinned to a version it does not
        serve are not delivered to it (protocol/versions.py)."""

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


log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0

# Kept readable for ordinary names (letters, digits, "-._~"); anything else is percent-encoded,
# which the server decodes (PROTOCOL.md §0.1 item 15) so the address and the stream meet.
_SAFE = "-._~"


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 1, 2, 4 ... 30."""
    return min(BACKOFF_CAP, BACKOFF_START * float(1 << min(attempt, 16)))


async def rest(stopped: asyncio.Event, seconds: float, clock: Clock | None = None) -> bool:
    """Sleep ``seconds`` unless ``stopped`` is set first; True when stopped.  The seconds
    are ``clock``'s when given (embedded mode: a test's virtual clock), else wall time."""
    if stopped.is_set():
        return True
    if clock is not None:
        sleeper = asyncio.ensure_future(clock.sleep(seconds))
        waiter = asyncio.ensure_future(stopped.wait())
        try:
            await asyncio.wait((sleeper, waiter), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waiter.cancel()
        return stopped.is_set()
    try:
        async with asyncio.timeout(seconds):
            await stopped.wait()
    except TimeoutError:
        return False
    return True


def quote_segment(segment: str) -> str:
    """One path segment of ``/poll/{group}/{pid}``, percent-encoded (``/`` included)."""
    return quote(segment, safe=_SAFE)


def anycast(group: str) -> str:
    return f"poll://any@{quote(group, safe=_SAFE)}"


def unicast(group: str, pid: str) -> str:
    return f"poll://uni@{quote(group, safe=_SAFE)}/{quote(pid, safe=_SAFE)}"


def dispatch(handlers: list[MessageHandler], message: dict[str, Any]) -> None:
    """Call every handler with ``message`` (runs via ``loop.call_soon``)."""
    for handler in handlers:
        try:
            handler(message)
        except Exception:
            log.exception("message handler %r failed on a %s message", handler, message.get("kind"))


class PollAddresses:
    """``Network.anycast`` / ``Network.unicast``, the same for every network."""

    def anycast(self, group: str) -> str:
        return anycast(group)

    def unicast(self, group: str, pid: str) -> str:
        return unicast(group, pid)
