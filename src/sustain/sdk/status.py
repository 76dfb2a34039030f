"""Status records from the SDK's side (protocol/status.py): written when something fails,
read by ``handle.status()``.

``StatusWriter`` sends ``sustain.status.set`` on the failure path only: a step's retried
attempt, its last attempt after retries, an execution paused because this code cannot run it.
A step that succeeds writes nothing, so the hot path pays nothing for it.  A server without
the extension (a Resonate server, or a Sustain server with ``protocol.status = false``)
answers 400 ``Unknown operation``: the writer then stops writing for the life of the network
and the failures are only logged (they are logged at WARNING either way).  A write never
fails the call it describes: any other error is logged and dropped.

``read`` builds an ``ExecutionStatus``: the execution's promise, its own record (a paused
execution, a retried workflow) and the records of its pending descendants (paged through
``promise.search`` by ``resonate:origin``).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec

from sustain.errors import ServerError, SustainError
from sustain.protocol.status import GET, MAX_IDS, SET, Status, bounded, pause_of
from sustain.protocol.tags import ORIGIN
from sustain.runtime.clock import Clock
from sustain.sdk.ids import validate_child
from sustain.sdk.network import Network, NetworkStopped

log = logging.getLogger(__name__)

_UNKNOWN = "Unknown operation"
_PAGE = 100
_MAX_PAGES = 100  # 10,000 pending promises: enough for a status, bounded for a huge fan-out


def pauses(on_code_mismatch: str) -> bool:
    """``Sustain(on_code_mismatch=...)`` checked: True to pause, False to fail."""
    if on_code_mismatch not in ("pause", "fail"):
        raise SustainError(f"on_code_mismatch must be 'pause' or 'fail', not {on_code_mismatch!r}")
    return on_code_mismatch == "pause"


def type_name(exc: BaseException) -> str:
    """``module.Qualname`` of the exception's class (builtins by their bare name)."""
    cls = type(exc)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def failure(exc: BaseException, attempts: int, next_retry_at: int | None) -> Status:
    """The record of a call whose attempt number ``attempts`` raised ``exc``."""
    text = "".join(traceback.format_exception(exc))
    return bounded(Status(attempts, type_name(exc), str(exc), text, next_retry_at))


def paused(reason: str, attempts: int, next_retry_at: int | None) -> Status:
    """The record of an execution this code cannot run (a deploy can fix it)."""
    return bounded(Status(attempts, nextRetryAt=next_retry_at, paused=reason))


class StatusWriter:
    """``sustain.status.set`` for one network, or nothing once the server says it has no such
    operation (module docstring)."""

    def __init__(self, network: Network) -> None:
        self.network = network
        self.supported = True

    async def write(self, id: str, status: Status) -> None:
        if not self.supported:
            return
        data = {"id": id, "status": msgspec.to_builtins(status)}
        try:
            answer = await self.network.request(SET, data)
        except NetworkStopped:
            return
        except Exception:  # the record is a courtesy: the failure it describes is logged
            log.debug("writing the status of %s failed", id, exc_info=True)
            return
        if answer.status == 400 and str(answer.data).startswith(_UNKNOWN):
            self.supported = False
            log.info(
                "the server keeps no status records (%s): failed attempts and paused "
                "executions are only logged by the worker", answer.data,
            )  # fmt: skip
        elif answer.status != 200:
            log.debug("status of %s not written: %s %s", id, answer.status, answer.data)


def _when(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True)
class StepStatus:
    """The status record of one promise, with the promise's state now.  A settled promise's
    record is history: its last failure before it settled."""

    id: str
    state: str
    attempts: int
    error_type: str | None
    message: str | None
    traceback: str | None
    next_retry_at: datetime | None
    paused: str | None
    updated_at: datetime | None

    @classmethod
    def of(cls, id: str, state: str, record: Status) -> StepStatus:
        return cls(
            id, state, record.attempts, record.errorType, record.message, record.traceback,
            _when(record.nextRetryAt), record.paused, _when(record.updatedAt or None),
        )  # fmt: skip


@dataclass(frozen=True)
class ExecutionStatus:
    """What ``handle.status()`` answers: the execution's state, its own record (``own``: set
    when it is paused or its function was retried), and the records of its pending
    descendants (``steps``, by id).  ``recorded`` is False when the server keeps no status
    records (a Resonate server): then only the worker's log tells."""

    id: str
    state: str
    own: StepStatus | None = None
    steps: list[StepStatus] = field(default_factory=list)
    recorded: bool = True
    paused: str | None = None
    """Why the execution is paused now (None when it is not): its own record says so and
    its worker wrote it lately (``protocol.status.pause_of``)."""


async def _ok(network: Network, kind: str, data: dict[str, Any]) -> Any:
    answer = await network.request(kind, data)
    if answer.status != 200:
        raise ServerError(answer.status, str(answer.data), kind)
    return answer.data


async def _pending_below(network: Network, id: str) -> dict[str, str]:
    """The pending promises of the execution ``id`` (not itself): id -> state."""
    found: dict[str, str] = {}
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        data: dict[str, Any] = {"state": "pending", "tags": {ORIGIN: id}, "limit": _PAGE}
        if cursor is not None:
            data["cursor"] = cursor
        page = await _ok(network, "promise.search", data)
        for p in page.get("promises") or []:
            if p["id"] != id:
                found[p["id"]] = p["state"]
        cursor = page.get("cursor")
        if not cursor:
            break
    return found


async def read(ensure: Callable[[], Awaitable[Network]], id: str, clock: Clock) -> ExecutionStatus:
    """``Sustain.status(id)``: ``ensure`` starts the network if needed."""
    validate_child(id)
    network = await ensure()
    now = clock.now()
    promise = (await _ok(network, "promise.get", {"id": id}))["promise"]
    states = {id: str(promise["state"])}
    if promise["state"] == "pending":
        states.update(await _pending_below(network, id))
    ids = list(states)
    records: dict[str, Status] = {}
    for i in range(0, len(ids), MAX_IDS):
        answer = await network.request(GET, {"ids": ids[i : i + MAX_IDS]})
        if answer.status == 400 and str(answer.data).startswith(_UNKNOWN):
            return ExecutionStatus(id, states[id], recorded=False)
        if answer.status != 200:
            raise ServerError(answer.status, str(answer.data), GET)
        for key, value in answer.data["statuses"].items():
            records[key] = msgspec.convert(value, Status)
    own = records.pop(id, None)
    steps = [StepStatus.of(k, states[k], records[k]) for k in sorted(records)]
    mine = None if own is None else StepStatus.of(id, states[id], own)
    why = None if own is None else pause_of(own, states[id], now)
    return ExecutionStatus(id, states[id], mine, steps, paused=why)
