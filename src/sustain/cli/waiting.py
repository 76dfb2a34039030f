"""Waiting for an invoked promise to settle (``sustain invoke --wait``).

The CLI polls ``promise.get`` (a short interval that grows to one second; a listener would
need the SSE stream, which a one-shot command should not hold) and, alongside, ``task.get``
on the same id to tell the user when nothing is happening:

* the task is still ``pending`` and has never been seen claimed after ``NOTICE_AFTER``
  seconds: a note on stderr that no worker of the group has picked it up (the wait goes on
  until the promise times out);
* the task is ``halted`` (``Sustain(on_code_mismatch="fail")``), or the execution is
  paused because no worker has its function (its status record, protocol/status.py): the
  wait ends with an error naming the function and group.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sustain.cli import output
from sustain.cli import status as cli_status
from sustain.cli.errors import CliError
from sustain.cli.payloads import now_ms
from sustain.cli.session import Session
from sustain.protocol import status
from sustain.protocol.values import decode_data

NOTICE_AFTER = 5.0  # seconds without a claim before the "no worker" note
POLL_FIRST, POLL_MAX = 0.1, 1.0


def until_settled(session: Session, id: str, func: str, group: str) -> dict[str, Any]:
    """The promise once settled; a halted task raises ``CliError``."""
    started = time.monotonic()
    delay = POLL_FIRST
    picked = noted = False
    while True:
        promise = _promise(session, id)
        if promise.get("state") != "pending":
            return promise
        task = _task(session, id)
        state = task.get("state")
        if state == "halted":
            raise CliError(
                f"{id}: the task was halted; no worker of group {group!r} has function "
                f"{func!r} (deploy it, then: sustain tasks continue {id})"
            )
        if picked and _paused_unknown(session, id):
            raise CliError(
                f"{id}: paused; no worker of group {group!r} has function {func!r} "
                "(deploy it there and it resumes)"
            )
        if state not in (None, "pending") or (task.get("version", 0) or 0) > 1:
            picked = True
        if not picked and not noted and time.monotonic() - started >= NOTICE_AFTER:
            noted = True
            output.note(
                f"no worker of group {group!r} has picked up {id} after {NOTICE_AFTER:g}s "
                f"(is `sustain worker ... --group {group}` running?); still waiting"
            )
        time.sleep(delay)
        delay = min(POLL_MAX, delay * 2)


def _paused_unknown(session: Session, id: str) -> bool:
    """The workers pause ``id`` because none has its function (its status record)."""
    record = status.decode(cli_status.fetch(session, [id]).get(id))
    why = None if record is None else status.pause_of(record, "pending", now_ms())
    return why is not None and why.startswith("FunctionNotFoundError")


def _promise(session: Session, id: str) -> dict[str, Any]:
    answer = session.request("promise.get", {"id": id})
    found = answer.get("promise") if isinstance(answer, dict) else None
    return found if isinstance(found, dict) else {"id": id}


def _task(session: Session, id: str) -> dict[str, Any]:
    # A promise without a task (no resonate:target) answers 404: nothing to watch then.
    answer = session.request("task.get", {"id": id}, ok=(200, 404))
    found = answer.get("task") if isinstance(answer, dict) else None
    return found if isinstance(found, dict) else {}


def value_of(promise: dict[str, Any]) -> Any:
    """The decoded JSON of the promise's value (text if it is not JSON, None if absent)."""
    value = promise.get("value")
    text = decode_data(value.get("data")) if isinstance(value, dict) else None
    if text is None or text == "":
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def fail_unless_resolved(promise: dict[str, Any]) -> None:
    """Exit 1 with the error of a promise that did not resolve."""
    id, state = promise.get("id"), promise.get("state")
    if state == "resolved":
        return
    if state == "rejected_timedout":
        raise CliError(f"{id} timed out at {output.fmt_time(promise.get('timeoutAt'))}")
    if state == "rejected_canceled":
        raise CliError(f"{id} was canceled")
    error = value_of(promise)
    if isinstance(error, dict) and error.get("__type") == "error":
        name = error.get("name") or "Error"
        raise CliError(f"{id} failed: {name}: {error.get('message', '')}")
    raise CliError(f"{id} was rejected: {json.dumps(error)}")
