"""The registry of SSE poll connections and the selection rules of PROTOCOL.md §1.6.

A worker holds ``GET /poll/{group}/{id}`` open; the registry maps each group to its
connections in registration order (several may share an id).  Each connection owns a bounded
buffer of encoded messages: delivery is a non-blocking append, so a slow worker can only lose
its own messages (dropped when its buffer is full), never stall the outbox loop.

Selection for ``poll://<cast>@<group>[/<id>]``:

* ``uni``: the first connection of the group with that id; no id or no match -> dropped.
* ``any``: the first connection with that id if the address has one and it matches,
  otherwise a uniformly random connection of the group.
* an empty group -> dropped.  Dropped messages are not retried here: executes come back
  through the task retry timer (§4.3).
* an execute *pinned* to a function version (protocol/versions.py) only goes to a stream
  that announced that version (the preferred id's if it did, else a random one of them);
  none -> dropped, so the execution waits for such a worker instead of failing.

An ``any`` message dropped because no stream of its group (serving its pin) is open is also
*parked*: the next stream of that group that serves it gets it the moment it registers.  So
an execution started before its first worker (``sustain invoke`` before ``sustain worker``,
a deploy that restarts every worker at once, the only v2 worker arriving) begins when that
worker connects, not at the task retry timeout (30 s by default).  Parking is a hint, never
a promise: at most ``PARKED`` messages in all (the oldest go first), kept in memory only, and
the retry timer still re-sends each execute.  A parked execute whose task meanwhile went to
another worker costs the newcomer one refused ``task.acquire`` (409).

A stream may have an ``owner`` (the tenant prefix of its token, server/sse.py): the registry
counts each owner's streams so that one tenant cannot take every slot.

On PostgreSQL the registry's ``watcher`` (the replica's ``Cluster``) is told of every stream
that opens or closes, so that poll messages are claimed by the replica holding a matching
stream (sustain/store/postgres/cluster.py).

Everything runs on the event loop thread; no locks.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sustain.protocol.versions import Functions, Pin, serves

if TYPE_CHECKING:
    from sustain.runtime.cluster import Cluster


@dataclass(slots=True, eq=False)
class PollConnection:
    """One open SSE stream: a bounded buffer and a waiter the stream sleeps on."""

    group: str
    id: str
    limit: int
    owner: str | None = None
    # What the worker announced it serves (None: nothing, an official SDK's stream).
    functions: Functions | None = None
    closed: bool = False
    _buffer: deque[bytes] = field(default_factory=deque, init=False)
    _waiter: asyncio.Future[None] | None = field(default=None, init=False)

    def offer(self, payload: bytes) -> bool:
        """Queue ``payload`` unless closed or full; True when queued."""
        if self.closed or len(self._buffer) >= self.limit:
            return False
        self._buffer.append(payload)
        self._wake()
        return True

    def announced(self) -> Functions | None:
        """The functions and versions this stream's worker serves (the UI shows them)."""
        return self.functions

    def serves(self, pin: Pin) -> bool:
        return serves(self.announced(), pin)

    def close(self) -> None:
        """End the stream: the writer sees ``closed`` at its next wake-up."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self, idle: float) -> list[bytes]:
        """Every queued message, waiting up to ``idle`` s for one; [] on timeout/close."""
        if not self._buffer and not self.closed:
            loop = asyncio.get_running_loop()
            self._waiter = loop.create_future()
            handle = loop.call_later(idle, self._wake)
            try:
                await self._waiter
            finally:
                handle.cancel()
                self._waiter = None
        items = list(self._buffer)
        self._buffer.clear()
        return items


PARKED = 10_000  # anycast messages kept for a group's next stream (all groups together)


class PollRegistry:
    """``group -> [connections]`` with the capacity limit and the uni/any rules."""

    def __init__(self, max_connections: int, buffer_size: int, rng: random.Random | None = None):
        self._groups: dict[str, list[PollConnection]] = {}
        self._count = 0
        self._owned: dict[str, int] = {}
        self._max = max_connections
        self._buffer_size = buffer_size
        self._rng = rng or random.Random()
        # A PostgreSQL replica publishes the streams it holds (runtime/cluster.py); None on a
        # single server.
        self.watcher: Cluster | None = None
        # Dropped anycast messages by (group, payload), oldest first (see the module header).
        self._parked: dict[tuple[str, bytes], Pin | None] = {}

    def __len__(self) -> int:
        return self._count

    def owned(self, owner: str) -> int:
        """How many open streams ``owner`` holds."""
        return self._owned.get(owner, 0)

    def register(
        self, group: str, id: str, owner: str | None = None, functions: Functions | None = None
    ) -> PollConnection | None:
        """A new connection, or None when the registry is at capacity (503)."""
        if self._count >= self._max:
            return None
        conn = PollConnection(group, id, self._buffer_size, owner, functions)
        self.add(conn)
        return conn

    def add(self, conn: PollConnection) -> None:
        """Register a connection built by the caller, without the capacity check: the
        embedded SDK (``sustain.sdk.local``) subscribes in-process listeners this way."""
        self._groups.setdefault(conn.group, []).append(conn)
        self._count += 1
        if conn.owner is not None:
            self._owned[conn.owner] = self.owned(conn.owner) + 1
        if self.watcher is not None:
            self.watcher.connected(conn.group, conn.id)
        if self._parked:
            self._unpark(conn)

    def unregister(self, conn: PollConnection) -> None:
        conns = self._groups.get(conn.group)
        if conns is None or conn not in conns:
            return
        conns.remove(conn)
        self._count -= 1
        if conn.owner is not None:
            left = self._owned.pop(conn.owner) - 1
            if left:
                self._owned[conn.owner] = left
        if self.watcher is not None:
            self.watcher.disconnected(conn.group, conn.id)
        if not conns:
            del self._groups[conn.group]

    def select(
        self, cast: str, group: str, id: str | None, pin: Pin | None = None
    ) -> PollConnection | None:
        """The connection a message to ``poll://cast@group/id`` goes to, if any; a pinned
        execute only to a connection that serves its version."""
        conns = self._groups.get(group)
        if not conns:
            return None
        if pin is not None:
            conns = [conn for conn in conns if conn.serves(pin)]
            if not conns:
                return None
        if id is not None:
            for conn in conns:
                if conn.id == id:
                    return conn
        if cast == "uni":
            return None
        return conns[0] if len(conns) == 1 else self._rng.choice(conns)

    def deliver(
        self, cast: str, group: str, id: str | None, payload: bytes, pin: Pin | None = None
    ) -> bool:
        """Queue ``payload`` on the selected connection; False when dropped (an anycast
        one is then parked for the group's next stream)."""
        conn = self.select(cast, group, id, pin)
        if conn is None:
            if cast == "any":
                self._park(group, payload, pin)
            return False
        return conn.offer(payload)

    def _park(self, group: str, payload: bytes, pin: Pin | None) -> None:
        parked = self._parked
        key = (group, payload)
        parked.pop(key, None)  # the same execute again (its retry): kept once, as the newest
        parked[key] = pin
        if len(parked) > PARKED:
            del parked[next(iter(parked))]

    def _unpark(self, conn: PollConnection) -> None:
        """Give a new stream the parked messages of its group that it serves."""
        parked = self._parked
        mine = [key for key, pin in parked.items() if key[0] == conn.group
                and (pin is None or conn.serves(pin))]  # fmt: skip
        for key in mine:
            if not conn.offer(key[1]):
                break  # its buffer is full: the rest wait for the next stream or the timer
            del parked[key]

    def parked(self) -> int:
        """How many messages wait for a stream of their group."""
        return len(self._parked)

    def connections(self) -> list[PollConnection]:
        """Every open connection, by group then registration order (read-only views: the
        UI's workers page and ``GET /workers``)."""
        return [conn for conns in self._groups.values() for conn in conns]

    def close_all(self) -> None:
        """End every stream (server shutdown)."""
        for conns in list(self._groups.values()):
            for conn in conns:
                conn.close()
