"""``Applier``: the one path by which a protocol operation is applied, without HTTP.

The server's ``POST /`` and ``sustain.batch`` elements, the UI's actions and the embedded
``LocalNetwork`` all apply an operation here:

1. ``Engine.prepare`` on the caller's event loop: parsing, validation against the limits, a
   schedule's cron.  Work that grows with a request's size so never waits in line on
   SQLite's single writer thread (docs/security.md, "Limits").
2. ``Engine.run`` inside one store transaction (``store.run_async``; on SQLite concurrent
   callers share a group commit).  Alone, an operation's answer has
   ``limits.max_answer_size`` to itself; in a batch, the batch's ``AnswerBudget`` is spent.
3. The after-effects on the background loops (``Runtime.after``): the outbox loop rung, the
   timer loop's wake-up moved earlier, ``debug.start`` / ``debug.stop`` pausing the loops.

An operation is the protocol's ``Request`` record (kind, corrId, data, debug time); the
embedded network and the UI build one without an envelope.  A ``ProtocolError`` is the
operation's answer (its status and message).  A store that is
closing or whose commit failed raises through: the server answers 503, the embedded network
retries or stops; that policy is the caller's (and the store's error classes are).
Authentication and authorization stay in the server around this (server/access.py).
"""

from __future__ import annotations

from collections.abc import Callable

from sustain.engine import Outcome
from sustain.engine.dispatch import Engine
from sustain.protocol.envelope import Request
from sustain.protocol.errors import ProtocolError
from sustain.runtime.budget import AnswerBudget
from sustain.runtime.clock import Clock
from sustain.store.base import Store
from sustain.store.tx import Tx

AfterEffects = Callable[[str, Outcome], None]


class Applier:
    """Applies one operation: prepare, run in a store transaction, tell the loops."""

    __slots__ = ("_after", "_clock", "_debug", "_engine", "_store", "max_answer")

    def __init__(self, engine: Engine, store: Store, clock: Clock, after: AfterEffects) -> None:
        self._engine = engine
        self._store = store
        self._clock = clock
        self._after = after
        self._debug = engine.config.debug  # a request's debug time counts only then
        self.max_answer = engine.config.limits.max_answer_size

    async def apply(
        self, request: Request, *, budget: AnswerBudget | None = None, durable: bool = True
    ) -> Outcome:
        """The operation's outcome, at the clock's "now" (read again by each call: a caller
        that retries a failed commit gets a fresh one), or at the request's debug time in
        debug mode."""
        engine = self._engine
        kind = request.kind
        corr_id = request.corr_id
        debug_time = request.debug_time if self._debug else None
        try:
            prepared = engine.prepare(kind, request.data)
            if isinstance(prepared, Outcome):
                return prepared
            # §1.5: in debug mode a request's debug time is its "now" (createdAt, deadlines,
            # leases, a schedule's next run), taken as sent and not folded into the clock: a
            # test harness moves it backwards when it resets.  Without debug mode it was
            # dropped above.  (A token's expiry stays on the wall clock: the server
            # authenticates before it applies.)
            now = self._clock.now() if debug_time is None else debug_time
            if budget is None:
                max_answer = self.max_answer

                # One closure, run on the store's writer: this is every request's path.
                def op(tx: Tx) -> Outcome:
                    return engine.run(tx, prepared, now, corr_id, debug_time, max_answer)

                outcome = await self._store.run_async(op, durable)
            else:

                def spend(tx: Tx) -> Outcome:
                    return budget.spend(
                        lambda left: engine.run(tx, prepared, now, corr_id, debug_time, left)
                    )

                outcome = await budget.take_turn(
                    kind, lambda: self._store.run_async(spend, durable)
                )
        except ProtocolError as error:
            return Outcome(error.status, error.message)
        self._after(kind, outcome)
        return outcome
