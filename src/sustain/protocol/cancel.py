"""Cancelling an execution tree: which promises to settle, in which order (sans-I/O).

One walk serves the SDK's ``handle.cancel()`` (async, over its network), the CLI's
``sustain cancel ID`` (sync HTTP) and the UI's button (the server's own ``Applier``): ``walk``
is a generator that yields each operation as ``(kind, data)`` and is sent back its answer as
``(status, data)``; ``drive`` and ``drive_async`` feed it from a caller's request function.
No I/O here, so every caller cancels exactly the same promises.

Theory of operation.  The descendants of an execution are found by the SDKs' tags
(SDK-WIRE §2.1): every promise of an execution carries ``resonate:origin`` = the root's id,
whatever group runs it, so one paged ``promise.search`` by origin and state ``pending``
lists them (the search pages by ``cursor``, also when the answer size cut a page short).
Below ``id`` means the id extends it (``wf`` → ``wf:1`` → ``wf:1.2``).  A detached call hangs
off the origin as ``{origin}:d<16 hex>``: it and everything under it is left alone unless
``detached`` is asked for.  A call under an explicit id of another origin (a link record,
SDK-WIRE §2.1) is a lineage of its own, possibly shared with other callers: it is not
followed.

Order: the root first, then the descendants shallowest first, each settled
``rejected_canceled`` (the protocol's cancel state, §2.3).  Settling a promise fulfils its
task, so a parent is never resumed by a child cancelled after it, and user code never sees
its own children cancelled under it; a worker that still runs a cancelled task learns it
from its next task operation (404/409) or its listener (sdk/replay.py).  A workflow that was
still running may have created children after a search: the search runs again until it finds
nothing pending (at most ``MAX_ROUNDS``).

Cancelling an execution that is already settled is a no-op: nothing is written, and the
report says what state it was in.  Cancelling again is therefore harmless.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from typing import Any

CANCELED = "rejected_canceled"
ORIGIN = "resonate:origin"
MAX_ROUNDS = 10
PAGE = 1000  # promise.search's largest limit (§2.6)
_DETACHED = re.compile(r"^([^.:]+:d[0-9a-f]{16})(?:[.:]|$)")  # a detached call, or under one
_SEPARATORS = re.compile(r"[.:]")

Operation = tuple[str, dict[str, Any]]
Answer = tuple[int, Any]
Walk = Generator[Operation, Answer, "CancelReport"]


class CancelFailed(Exception):
    """An operation of the walk was answered with an error (e.g. 404 ``Promise not found``,
    403 ``Forbidden``): ``status`` and the server's ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CancelReport:
    """What a cancel did: the execution ``id``, the ``state`` it was in before, and the ids
    this cancel settled as ``rejected_canceled`` (the root first)."""

    id: str
    state: str
    canceled: tuple[str, ...]

    @property
    def noop(self) -> bool:
        return not self.canceled

    def message(self) -> str:
        if self.state != "pending":
            return f"{self.id} is already {self.state}: nothing to cancel"
        if not self.canceled:
            return f"{self.id} settled meanwhile: nothing canceled"
        below = len(self.canceled) - (1 if self.canceled[0] == self.id else 0)
        return f"canceled {self.id} and {below} pending descendant(s)"


def origin_of(id: str) -> str:
    return _SEPARATORS.split(id, 1)[0]


def below(id: str, ancestor: str) -> bool:
    """True when ``id`` lies strictly below ``ancestor`` (the protocol's prefix rule)."""
    return len(id) > len(ancestor) and id.startswith(ancestor) and id[len(ancestor)] in ".:"


def in_detached(id: str, ancestor: str) -> bool:
    """True when ``id`` is a detached call or lies under one, below ``ancestor``."""
    match = _DETACHED.match(id)
    if match is None:
        return False
    head = match.group(1)
    return ancestor != head and not below(ancestor, head)  # not when cancelling inside it


def depth(id: str) -> int:
    return len(_SEPARATORS.findall(id))


def walk(id: str, *, detached: bool = False) -> Walk:
    """Cancel ``id`` and its pending descendants (see the module docstring)."""
    status, data = yield "promise.get", {"id": id}
    _check(status, data)
    state = str(data["promise"]["state"])
    if state != "pending":
        return CancelReport(id, state, ())
    canceled: list[str] = []
    if (yield from _cancel_one(id)):
        canceled.append(id)
    done = {id}
    for _ in range(MAX_ROUNDS):
        found = yield from _pending_below(id, detached)
        todo = sorted((p for p in found if p not in done), key=lambda p: (depth(p), p))
        if not todo:
            break
        for pid in todo:
            done.add(pid)
            if (yield from _cancel_one(pid)):
                canceled.append(pid)
    return CancelReport(id, state, tuple(canceled))


def _cancel_one(id: str) -> Generator[Operation, Answer, bool]:
    """Settle ``id`` as canceled; True when it is canceled now (it may have settled
    otherwise meanwhile, or be gone)."""
    status, data = yield "promise.settle", {"id": id, "state": CANCELED, "value": {}}
    if status == 404:
        return False
    _check(status, data)
    return bool(data["promise"]["state"] == CANCELED)


def _pending_below(id: str, detached: bool) -> Generator[Operation, Answer, list[str]]:
    found: list[str] = []
    query: dict[str, Any] = {"state": "pending", "tags": {ORIGIN: origin_of(id)}, "limit": PAGE}
    while True:
        status, data = yield "promise.search", query
        _check(status, data)
        for promise in data["promises"]:
            pid = str(promise["id"])
            if below(pid, id) and (detached or not in_detached(pid, id)):
                found.append(pid)
        cursor = data.get("cursor")
        if not cursor:
            return found
        query = {**query, "cursor": cursor}


def _check(status: int, data: Any) -> None:
    if status != 200:
        raise CancelFailed(status, data if isinstance(data, str) else str(data))


def drive(steps: Walk, request: Callable[[str, dict[str, Any]], Answer]) -> CancelReport:
    """Run a walk with a blocking ``request(kind, data) -> (status, data)``."""
    try:
        operation = next(steps)
        while True:
            operation = steps.send(request(*operation))
    except StopIteration as end:
        report: CancelReport = end.value
        return report


async def drive_async(
    steps: Walk, request: Callable[[str, dict[str, Any]], Awaitable[Answer]]
) -> CancelReport:
    """Run a walk with an async ``request(kind, data) -> (status, data)``."""
    try:
        operation = next(steps)
        while True:
            operation = steps.send(await request(*operation))
    except StopIteration as end:
        report: CancelReport = end.value
        return report
