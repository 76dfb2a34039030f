"""Reading the queue app's log (queue_app.py): what ran, when, and how much at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sustain.sdk.codec import encode_invocation
from tests.servers import ServerProcess

T = "poll://any@{group}"


@dataclass(frozen=True)
class Event:
    kind: str  # start | end
    name: str
    key: str
    at: float
    pid: int


def events(log: Path) -> list[Event]:
    if not log.exists():
        return []
    out = []
    for line in log.read_text().splitlines():
        kind, name, key, at, pid = line.split()
        out.append(Event(kind, name, key, float(at), int(pid)))
    return out


def max_at_once(evs: list[Event], by: Callable[[Event], str] = lambda e: "") -> dict[str, int]:
    """The largest number of jobs running at once, per ``by`` (one bucket by default).  A
    start that never ended (its process was killed) counts until the log's last event."""
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    # ends before starts at the same instant: a slot freed then taken is not an overlap
    for e in sorted(evs, key=lambda e: (e.at, e.kind != "end")):
        b = by(e)
        running[b] = running.get(b, 0) + (1 if e.kind == "start" else -1)
        peak[b] = max(peak.get(b, 0), running[b])
    return peak


def put_job(
    server: ServerProcess,
    group: str,
    id: str,
    queue: str,
    *,
    key: str = "",
    priority: int | None = None,
    hold: float = 0.2,
) -> Any:
    """Create the job's promise on ``queue`` (the tags any SDK would send)."""
    tags = {"resonate:target": T.format(group=group), "sustain:queue": queue}
    if key:
        tags["sustain:key"] = key
    if priority is not None:
        tags["sustain:priority"] = str(priority)
    param = encode_invocation("job", [id, key, hold], {}, 1, id)
    data = {"id": id, "timeoutAt": int(time.time() * 1000) + 600_000, "param": param, "tags": tags}
    return server.ok("promise.create", data)


def wait_settled(server: ServerProcess, ids: list[str], patience: float = 60) -> None:
    deadline = time.monotonic() + patience
    left = set(ids)
    while left:
        for id in sorted(left):
            if server.ok("promise.get", {"id": id})["promise"]["state"] != "pending":
                left.discard(id)
        assert time.monotonic() < deadline, f"still pending: {sorted(left)}"
        time.sleep(0.1)
