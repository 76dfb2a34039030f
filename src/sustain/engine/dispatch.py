"""``Engine``: one protocol operation in, one ``Outcome`` out (never raises for the protocol).

Theory of operation: ``apply`` is ``prepare`` then ``run``.  ``prepare`` needs no store: it
looks the kind up (unknown -> 400), refuses ``debug.*`` unless the config enables it (403),
parses and validates the data (``protocol.requests``, 400 on the first failing check, the
configured limits included) and does the op's other store-free work (a fence's inner action,
a schedule's cron).  The server calls it before handing the op to the store, so work that
grows with the request's size never runs on SQLite's single writer thread.  ``run`` executes
the op's handler against the Tx with a fresh ``Ctx``.  Handlers
answer ``(status, data)`` or raise ``ProtocolError`` — but only before any write other than
try_timeout's, whose effects are meant to commit with the error answer.  ``apply`` turns the
error into an ``Outcome`` and returns normally, so the store commits.  Any other exception is
a bug: it propagates, and the store rolls the whole operation back.

The engine is pure: time arrives as ``now``, storage as the ``Tx``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from sustain.engine import (
    debug,
    promises,
    queue_ops,
    retry,
    schedules,
    status,
    tasks,
    timeouts,
)
from sustain.engine.context import Ctx, EngineConfig, Outcome
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import Limits
from sustain.protocol.requests import KINDS, parse
from sustain.protocol.status import GET as STATUS_GET
from sustain.protocol.status import SET as STATUS_SET
from sustain.store.tx import Tx

Handler = Callable[[Ctx, Any], tuple[int, object]]

_HANDLERS: dict[str, Handler] = {
    "promise.get": promises.op_get,
    "promise.create": promises.op_create,
    "promise.settle": promises.op_settle,
    "promise.register_callback": promises.op_register_callback,
    "promise.register_listener": promises.op_register_listener,
    "promise.search": promises.op_search,
    "task.get": tasks.op_get,
    "task.create": tasks.op_create,
    "task.acquire": tasks.op_acquire,
    "task.release": tasks.op_release,
    "task.fulfill": tasks.op_fulfill,
    "task.suspend": tasks.op_suspend,
    "task.fence": tasks.op_fence,
    "task.heartbeat": tasks.op_heartbeat,
    "task.halt": tasks.op_halt,
    "task.continue": tasks.op_continue,
    "task.search": tasks.op_search,
    "schedule.get": schedules.op_get,
    "schedule.create": schedules.op_create,
    "schedule.delete": schedules.op_delete,
    "schedule.search": schedules.op_search,
    "sustain.queue.create": queue_ops.op_create,
    "sustain.queue.get": queue_ops.op_get,
    "sustain.queue.list": queue_ops.op_list,
    "sustain.queue.delete": queue_ops.op_delete,
    "debug.start": debug.op_start_stop,
    "debug.stop": debug.op_start_stop,
    "debug.reset": debug.op_reset,
    "debug.snap": debug.op_snap,
    STATUS_SET: status.op_set,
    STATUS_GET: status.op_get,
    "sustain.retry": retry.op_retry,
}
assert set(_HANDLERS) | {"debug.tick"} == KINDS

# The store-free part of an op beyond parsing (see the module docstring).
_PREPARE: dict[str, Callable[[Any, Limits], Any]] = {
    "task.fence": tasks.prepare_fence,
    "schedule.create": schedules.prepare_create,
}


# The Sustain extensions an engine may be configured without (``EngineConfig.status``).
_EXTENSIONS = frozenset({STATUS_SET, STATUS_GET})


class Prepared(NamedTuple):
    """An operation ready to run: its kind and its parsed, validated request."""

    kind: str
    request: Any


class Engine:
    """Every operation of PROTOCOL.md §2 over a ``Tx``."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config

    def apply(  # noqa: PLR0917 - the signature every caller codes against
        self,
        tx: Tx,
        kind: str,
        data: dict[str, Any],
        now: int,
        corr_id: str,
        debug_time: int | None = None,
    ) -> Outcome:
        prepared = self.prepare(kind, data)
        if isinstance(prepared, Outcome):
            return prepared
        return self.run(tx, prepared, now, corr_id, debug_time)

    def prepare(self, kind: str, data: dict[str, Any]) -> Prepared | Outcome:
        """Everything before the store: the operation ready to ``run``, or its error answer."""
        if kind not in KINDS:
            return Outcome(400, f"Unknown operation: {kind}")
        if kind.startswith("debug.") and not self.config.debug:
            return Outcome(403, "Debug operations are disabled")
        if kind in _EXTENSIONS and not self.config.status:
            return Outcome(400, f"Unknown operation: {kind}")  # as a Resonate server answers
        limits = self.config.limits
        try:
            request = parse(kind, data, limits)
            more = _PREPARE.get(kind)
            if more is not None:
                request = more(request, limits)
        except ProtocolError as e:
            return Outcome(e.status, e.message)
        return Prepared(kind, request)

    def run(  # noqa: PLR0917 - apply's arguments, and the answer's budget
        self,
        tx: Tx,
        prepared: Prepared,
        now: int,
        corr_id: str,
        debug_time: int | None = None,
        max_answer: int | None = None,
    ) -> Outcome:
        """Run a prepared operation in ``tx``.  A search answers a cursor before its answer
        passes ``max_answer`` bytes (default: ``limits.max_answer_size``)."""
        if max_answer is None:
            max_answer = self.config.limits.max_answer_size
        kind, request = prepared
        ctx = Ctx(tx, now, self.config.retry_timeout, corr_id, max_answer)
        try:
            if kind == "debug.tick":
                status, body = debug.tick_op(ctx, request, debug_time)
            else:
                status, body = _HANDLERS[kind](ctx, request)
        except ProtocolError as e:
            return ctx.outcome(e.status, e.message)
        return ctx.outcome(status, body)

    def tick(self, tx: Tx, time: int) -> Outcome:
        """One background timeout pass at ``time`` (§5.1, schedules §5.3)."""
        ctx = Ctx(tx, time, self.config.retry_timeout)
        timeouts.tick(ctx)
        return ctx.outcome(200, [])
