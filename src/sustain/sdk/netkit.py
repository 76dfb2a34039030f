"""What ``LocalNetwork`` and ``RemoteNetwork`` share: the retry ladder, a stop-aware sleep,
poll addresses and the fan-out of one message to its handlers.

The ladder is SDK-WIRE.md §3.4's: wait 1 s, 2 s, 4 s ... capped at 30 s between attempts,
forever, until the network stops.  ``rest`` is the sleep between attempts: it returns early
(True) when the network stops, so ``stop()`` never waits for a backoff to run out.

Handlers run on the event loop through ``call_soon``: the code that received the message (the
outbox loop in embedded mode, the SSE reader remotely) never runs user code itself, so a
failing or slow handler cannot kill or stall delivery.  A handler that raises is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from sustain.sdk.network import MessageHandler

log = logging.getLogger(__name__)

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0

# Kept readable for ordinary names (letters, digits, "-._~"); anything else is percent-encoded,
# which the server decodes (PROTOCOL.md §0.1 item 15) so the address and the stream meet.
_SAFE = "-._~"


def backoff(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): 1, 2, 4 ... 30."""
    return min(BACKOFF_CAP, BACKOFF_START * float(1 << min(attempt, 16)))


async def rest(stopped: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stopped`` is set first; True when stopped."""
    if stopped.is_set():
        return True
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
