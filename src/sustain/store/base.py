"""The ``Store`` protocol: run one engine operation in one transaction.

A store owns its connection(s).  ``run`` blocks the calling thread until the operation's
transaction has committed (and, for durable stores, reached the disk); ``run_async`` is the
same for coroutines.  If ``op`` raises, its writes are rolled back and the exception
propagates; every other operation in the same group commit is unaffected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from sustain.store.tx import Tx

T = TypeVar("T")


class Store(Protocol):
    def run(self, op: Callable[[Tx], T]) -> T:
        """Run ``op`` in a transaction and return its result after the commit."""

    async def run_async(self, op: Callable[[Tx], T], durable: bool = True) -> T:
        """``run`` for asyncio callers: never blocks the event loop.

        ``durable=False`` may answer once the op is committed, before the commit is on disk
        (a store that syncs after committing, like SQLite's, answers earlier; others ignore
        it).  The next durable answer's sync covers it: use it only for answers nobody outside
        this process observes (docs/decisions.md, "Volatile acknowledgement")."""

    def ping(self) -> bool:
        """True when the store answers a trivial query (``/ready``)."""

    def close(self) -> None:
        """Finish queued operations, then release connections and locks."""
