"""The status record of a pending promise: a Sustain extension (docs/protocol.md, "sustain.status").

A step that fails and is retried, or an execution that this code cannot replay and that is
paused until a deploy fixes it, is still ``pending`` on the wire: nothing in a promise says
that it failed three times, why, or when it is tried next.  The SDK writes that here, with
``sustain.status.set``, on the failure path only (a succeeding step writes nothing), and
``sustain tree``, the UI, ``sustain promises get`` and ``handle.status()`` read it with
``sustain.status.get``.  The record is the SDK's last word on the promise, so a write
replaces the whole record; it is kept when the promise settles, as the history of its last
failure (readers show it together with the promise's state).

The record is bounded: the SDK truncates (``truncate``), the server refuses what is still
too large (400), so a misbehaving client cannot store megabytes per promise.

Pure: no I/O, no clock (``now`` is the caller's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec

from sustain.protocol.errors import ProtocolError

SET = "sustain.status.set"
GET = "sustain.status.get"

# Characters of each text field; the traceback keeps its *end* (where it was raised).
MAX_TYPE = 256
MAX_MESSAGE = 2048
MAX_TRACEBACK = 8192
MAX_REASON = 2048
# Ids of one ``sustain.status.get``.
MAX_IDS = 1000

_Count = Annotated[int, msgspec.Meta(ge=0, le=2**31)]
_Time = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


class Status(msgspec.Struct, omit_defaults=True):
    """What the SDK knows about a pending promise it failed to finish (field names as on the
    wire).  ``paused`` is set for an execution this code cannot replay (a nondeterminism, an
    unknown function): the reason, in words.  ``updatedAt`` is the server's clock at the write
    (set by the server, whatever the client sends)."""

    attempts: _Count = 0
    errorType: str | None = None
    message: str | None = None
    traceback: str | None = None
    nextRetryAt: _Time | None = None
    paused: str | None = None
    updatedAt: _Time = 0


class StatusSet(msgspec.Struct):
    id: str
    status: Status


class StatusGet(msgspec.Struct):
    ids: list[str]


class StatusPage(msgspec.Struct):
    """The answer of ``sustain.status.get``: the records found, by promise id (ids without a
    record are absent)."""

    statuses: dict[str, Status]


_FIELDS = (
    ("errorType", MAX_TYPE),
    ("message", MAX_MESSAGE),
    ("traceback", MAX_TRACEBACK),
    ("paused", MAX_REASON),
)


def check_set(r: StatusSet, _: object) -> None:
    if not r.id:
        raise ProtocolError(400, "Promise ID is required")
    for name, most in _FIELDS:
        text = getattr(r.status, name)
        if text is not None and len(text) > most:
            raise ProtocolError(400, f"Invalid status: '{name}' is longer than {most} characters")


def check_get(r: StatusGet, _: object) -> None:
    if not r.ids:
        raise ProtocolError(400, "Invalid 'ids' — must be a non-empty array of promise ids")
    if len(r.ids) > MAX_IDS:
        raise ProtocolError(400, f"Invalid 'ids' — at most {MAX_IDS} ids allowed")


# A paused worker writes its record again at every delivery (at most every 30 s plus the
# redelivery): a pause record whose next retry is this long past is no longer current (the
# execution was resumed by fixed code, or its worker is gone), only history.
PAUSE_FRESH_MS = 60_000


def pause_of(status: Status, state: str, now: int) -> str | None:
    """Why the promise is paused now, or None (not paused, settled, or a stale record)."""
    if status.paused is None or state != "pending":
        return None
    due = status.nextRetryAt if status.nextRetryAt is not None else status.updatedAt
    return status.paused if now <= due + PAUSE_FRESH_MS else None


def _at(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def summary(status: Status, state: str, now: int) -> str:
    """One line for ``sustain tree`` and the UI: why a promise is paused, how its attempts
    fail and when the next one is, or (settled, or a stale pause) its history."""
    why = pause_of(status, state, now)
    if why is not None:
        due = f"; tried again after {_at(status.nextRetryAt)}" if status.nextRetryAt else ""
        return f"paused: {why}{due}"
    if status.paused is not None:
        return f"was paused: {status.paused}"
    error = f"{status.errorType}: {status.message}" if status.errorType else "an error"
    if state != "pending":
        return f"after {status.attempts} attempts; the last failed with {error}"
    due = f"; next retry {_at(status.nextRetryAt)}" if status.nextRetryAt else ""
    return f"attempt {status.attempts} failed: {error}{due}"


def decode(record: object) -> Status | None:
    """A record as a JSON client holds it (a dict), or None when it is not one."""
    try:
        return msgspec.convert(record, Status)
    except msgspec.ValidationError:
        return None


def truncate(text: str | None, most: int, keep_end: bool = False) -> str | None:
    """``text`` cut to ``most`` characters, marked with an ellipsis; a traceback keeps its
    end (the frame that raised and the exception), a message its start."""
    if text is None or len(text) <= most:
        return text
    if keep_end:
        return "…" + text[len(text) - most + 1 :]
    return text[: most - 1] + "…"


def bounded(status: Status) -> Status:
    """``status`` with every text field truncated to what the server accepts."""
    return msgspec.structs.replace(
        status,
        errorType=truncate(status.errorType, MAX_TYPE),
        message=truncate(status.message, MAX_MESSAGE),
        traceback=truncate(status.traceback, MAX_TRACEBACK, keep_end=True),
        paused=truncate(status.paused, MAX_REASON),
    )
