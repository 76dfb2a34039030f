"""The seam between one server process and the other replicas sharing its database.

A single server (SQLite, memory) has no ``Cluster``: ``Runtime.cluster`` is None and every
hook below is skipped by one ``is None`` test, so that path runs exactly as before.  A
server on PostgreSQL is a replica of a cluster (possibly of one) and gets a
``PostgresCluster`` (sustain/store/postgres/cluster.py, which documents the design):

* ``announce`` after every local write that rings the local loops: the other replicas are
  told (``NOTIFY``) that the outbox has entries or that a timer moved earlier.
* ``connected`` / ``disconnected`` from the poll registry: the replica publishes which
  ``(group, id)`` streams it holds, so poll messages are claimed by the replica that can
  deliver them.
* ``claim`` replaces the outbox loop's ``claim_outbox``: it marks, rather than deletes,
  what it takes; ``sent_execute`` / ``sent_unblock`` acknowledge an entry once it went out,
  and the next claim deletes the acknowledged entries.
* ``drain`` (SIGTERM) stops claiming; ``stop`` hands what the replica held to the others.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sustain.protocol.records import Promise
    from sustain.runtime.config import ServerConfig
    from sustain.store.tx import Execute

Claimed = tuple[list["Execute"], list[tuple["Promise", str]]]


def replica_id(config: ServerConfig) -> str:
    """``server.replica_id``, or ``<hostname>-<pid>``: unique per process, and the same for
    every caller in one process (logs, metrics and claims name the replica alike)."""
    return config.server.replica_id or f"{socket.gethostname()}-{os.getpid()}"


class Cluster(Protocol):
    replica_id: str

    async def start(
        self, wake_outbox: Callable[[], None], wake_timer: Callable[[int], None]
    ) -> None:
        """Join the cluster; ring ``wake_outbox`` / ``wake_timer(deadline)`` when another
        replica reports work."""

    def announce(self, outbox: bool, deadline: int | None) -> None:
        """A local write queued outbox entries and/or created a timer at ``deadline``."""

    def connected(self, group: str, id: str) -> None:
        """A poll stream ``(group, id)`` opened on this replica."""

    def disconnected(self, group: str, id: str) -> None:
        """A poll stream ``(group, id)`` closed on this replica."""

    async def claim(self, limit: int) -> Claimed:
        """Claim up to ``limit`` executes and unblocks this replica may deliver."""

    def sent_execute(self, task_id: str, version: int) -> None:
        """The claimed execute went out (or was dropped): delete it at the next claim."""

    def sent_unblock(self, promise_id: str, address: str) -> None:
        """The claimed unblock went out (or was dropped): delete it at the next claim."""

    def drain(self) -> None:
        """Shutting down: claim nothing more."""

    async def stop(self) -> None:
        """Acknowledge what was sent, withdraw this replica's streams and claims."""
