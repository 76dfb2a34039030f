"""What one engine operation carries around: the Tx, ``now`` and the effects it reports.

``Ctx`` is created per operation.  Besides the Tx and the clock it collects what the server
needs to know after the commit: whether the outbox was written (wake the delivery loop) and
the earliest timer this operation created or moved (wake the timer loop no later than that).
"""

from __future__ import annotations

from typing import Any

import msgspec

from sustain.protocol.limits import DEFAULT_LIMITS, Limits
from sustain.store.tx import Tx


class EngineConfig(msgspec.Struct, frozen=True):
    retry_timeout: int = 30000
    debug: bool = False
    limits: Limits = DEFAULT_LIMITS
    # ``sustain.status.*`` (a Sustain extension); False answers them "Unknown operation".
    status: bool = True


class Outcome(msgspec.Struct):
    """The answer to one operation: ``head.status`` and ``data`` of the response envelope."""

    status: int
    data: Any
    wake_outbox: bool = False
    deadline: int | None = None
    scheduled: int = 0  # promises a tick created for schedules (the metric of §7.2)


class Ctx:
    __slots__ = (
        "corr_id",
        "deadline",
        "max_answer",
        "now",
        "retry",
        "scheduled",
        "tx",
        "wake_outbox",
    )

    def __init__(
        self, tx: Tx, now: int, retry: int, corr_id: str = "", max_answer: int | None = None
    ) -> None:
        self.tx = tx
        self.now = now
        self.retry = retry
        self.corr_id = corr_id
        # The answer bytes a search may fill before it answers a cursor (None: unbounded).
        self.max_answer = max_answer
        self.wake_outbox = False
        self.deadline: int | None = None
        self.scheduled = 0

    def timer(self, at: int) -> None:
        """Note a timer this operation created or moved."""
        if self.deadline is None or at < self.deadline:
            self.deadline = at

    def execute(self, task_id: str, version: int, address: str) -> None:
        self.tx.put_execute(task_id, version, address)
        self.wake_outbox = True

    def unblock(self, promise_id: str, address: str) -> None:
        self.tx.put_unblock(promise_id, address)
        self.wake_outbox = True

    def outcome(self, status: int, data: Any) -> Outcome:
        return Outcome(status, data, self.wake_outbox, self.deadline, self.scheduled)
