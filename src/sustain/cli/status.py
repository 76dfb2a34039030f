"""The status records of promises (protocol/status.py) as the CLI reads and shows them.

``fetch`` asks ``sustain.status.get`` for a set of ids; a server without the extension (a
Resonate server, ``protocol.status = false``) answers 400 ``Unknown operation``, and the
commands then show the promises alone.  ``sustain promises get`` adds the record's rows,
``sustain tree`` a line per node (``summary``).
"""

from __future__ import annotations

from typing import Any

from sustain.cli.errors import ErrorAnswer
from sustain.cli.payloads import now_ms
from sustain.cli.session import Session
from sustain.protocol import status


def fetch(session: Session, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records of those of ``ids`` that have one (JSON dicts), by id."""
    found: dict[str, dict[str, Any]] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), status.MAX_IDS):
        try:
            answer = session.request(status.GET, {"ids": unique[i : i + status.MAX_IDS]})
        except ErrorAnswer as exc:
            if exc.status == 400 and str(exc.message).startswith("Unknown operation"):
                return {}
            raise
        records = answer.get("statuses") if isinstance(answer, dict) else None
        if isinstance(records, dict):
            found.update((k, v) for k, v in records.items() if isinstance(v, dict))
    return found


def summary(record: dict[str, Any] | None, state: object) -> str:
    """One line for a node of ``sustain tree`` ("" without a record)."""
    decoded = status.decode(record) if record is not None else None
    if decoded is None:
        return ""
    return status.summary(decoded, str(state), now_ms())
