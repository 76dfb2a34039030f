"""The answer budget of one ``sustain.batch`` (``limits.max_answer_size``, docs/security.md).

A batch's elements share one budget of answer bytes.  Each element runs inside its store
transaction through ``AnswerBudget.spend``: with budget left it runs, a search paging at
what is left (``Engine.run``'s ``max_answer``), and its answer's estimated size is charged;
once nothing is left, an element does not run at all and answers 413
``Batch answer too large — send this request again`` (it changed nothing, so sending it
again, alone or in a later batch, is always safe).  A search with any budget left answers at
least one record, as a lone search does.

Searches are what one small element can make large, so a batch's searches take turns
(``take_turn``, in request order): each sees what the ones before it spent.  The other
elements run concurrently as before (on PostgreSQL each on its own connection), and each
answers at most a record or a few (a task's preload); so the whole answer is at most the
budget plus one record, plus one answer per element running at the moment it ran out.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

from sustain.engine import Outcome
from sustain.protocol.limits import MSG_ANSWER_TOO_LARGE, answer_size

SEARCHES = frozenset({"promise.search", "task.search", "schedule.search"})


class AnswerBudget:
    """Answer bytes a batch has left; shared by its elements (and their threads)."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._lock = threading.Lock()  # elements charge from the store's threads
        self._searches = asyncio.Lock()  # fair (FIFO): searches run in request order

    async def take_turn(self, kind: str, call: Callable[[], Awaitable[Outcome]]) -> Outcome:
        """``call()``, after the searches before it when ``kind`` is a search."""
        if kind not in SEARCHES:
            return await call()
        async with self._searches:
            return await call()

    def spend(self, run: Callable[[int], Outcome]) -> Outcome:
        """``run(bytes left)``'s outcome, charged to the budget; 413 when none is left."""
        with self._lock:
            left = self._left
        if left <= 0:
            return Outcome(413, MSG_ANSWER_TOO_LARGE)
        outcome = run(left)
        size = answer_size(outcome.data)
        with self._lock:
            self._left -= size
        return outcome
