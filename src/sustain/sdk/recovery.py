"""Taking back the leases of a previous incarnation at start-up, so recovery waits for no lease.

A task's lease ends when its holder fulfills, suspends or releases it, or when its ttl
lapses.  A holder that was killed does none of these, so without help its tasks wait out the
ttl.  Two cases know, at start-up, that a holder is dead:

* **embedded mode**: the SQLite store holds an exclusive file lock for as long as a process
  has the file open, so a process that could open it is the only one alive on it: every
  task still ``acquired`` in it belongs to a process that died.  It releases all of them.
* **a worker with a stable pid** (``Sustain(pid=...)``, ``sustain worker`` without
  ``--pid`` takes a per-host slot, cli/worker.py): a process with the pid of a dead one is
  its next incarnation.  Leases are held by pid (PROTOCOL.md §2.14), so every task acquired
  by that pid was the dead process's: it releases those.

Releasing (``task.release``) makes the task pending and sends its execute to its target at
once (PROTOCOL.md §2.10): this process, if it serves the group, or any other member.  Only
protocol operations are used (``task.search`` by state, filtered here by pid), so it works
against an official Resonate server too; an answer other than 200 (a token that may not
search, a server without ``task.search``) is logged and recovery falls back on the lease.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sustain.sdk.network import Network

log = logging.getLogger(__name__)

PAGE = 100  # tasks per task.search page: the protocol's default limit


async def release_held(
    network: Network, pid: str | None, ours: Callable[[str], bool] = lambda id: False
) -> int:
    """Release every task acquired by ``pid`` (by anyone when None) except those that
    ``ours`` says this incarnation holds or is acquiring; the count released.

    This process may acquire tasks while the takeover runs (an execute on the stream, a
    ``run``): those are skipped when released, and one acquired after the search has a newer
    version than the search saw, so its release is refused (409).  Either way a live pass
    never loses its lease to the takeover."""
    held: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        data: dict[str, Any] = {"state": "acquired", "limit": PAGE}
        if cursor is not None:
            data["cursor"] = cursor
        answer = await network.request("task.search", data)
        if answer.status != 200:
            log.info(
                "cannot list acquired tasks (%s %s): a previous incarnation's tasks resume "
                "when their leases lapse", answer.status, answer.data,
            )  # fmt: skip
            break
        page = answer.data.get("tasks") or []
        held += [t for t in page if pid is None or t.get("pid") == pid]
        cursor = answer.data.get("cursor")
        if not cursor or not page:
            break
    released = 0
    for task in held:
        if ours(task["id"]):
            continue
        # A 409 means the task moved on meanwhile (settled, lapsed, taken): nothing to do.
        answer = await network.request(
            "task.release", {"id": task["id"], "version": task["version"]}
        )
        if answer.status == 200:
            released += 1
    if released:
        log.info(
            "took over %d task(s) held by %s", released, pid or "the store's previous process",
            extra={"pid": pid},
        )  # fmt: skip
    return released
