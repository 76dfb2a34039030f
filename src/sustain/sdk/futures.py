"""What a durable call returns, awaitable (coroutines) and yieldable (generators).

Every durable op starts eagerly when it is called (its id is fixed then, so ids follow call
order).  ``DurableFuture`` stands for its outcome: ``await fut`` or ``x = yield fut`` gives
the value, raises the call's error, or raises ``Suspend`` when the outcome is a remote
promise still pending (the pass ends there).  ``Begin`` wraps a future for the ``begin_*``
forms: yielding it hands the future itself back to a generator (``p = yield
ctx.begin_run(...)`` ... ``x = yield p``), while awaiting it awaits the future.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, Final, Generic, TypeVar

from sustain.errors import Suspend

# What the call gives back: covariant, since a future is only read (a DurableFuture[bool]
# is a DurableFuture[int]).  Erased at run time, like every type parameter.
T_co = TypeVar("T_co", covariant=True)


class _Pending:
    def __repr__(self) -> str:
        return "PENDING"


PENDING: Final = _Pending()


class Outcome:
    """``ok`` with a value, an error, or PENDING (a remote child not settled yet)."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error

    def unwrap(self, id: str) -> Any:
        if self.error is not None:
            raise self.error
        if self.value is PENDING:
            raise Suspend(id)
        return self.value


class DurableFuture(Generic[T_co]):
    """The outcome of one durable call, with the call's deterministic ``id``; ``T_co`` is
    the called function's result type (signatures.py)."""

    __slots__ = ("id", "task")

    def __init__(self, id: str, task: asyncio.Task[Outcome]) -> None:
        self.id = id
        self.task = task

    def done(self) -> bool:
        return self.task.done() and self.task.result().value is not PENDING

    def __await__(self) -> Generator[Any, None, T_co]:
        outcome = yield from self.task.__await__()
        value: T_co = outcome.unwrap(self.id)
        return value

    def __repr__(self) -> str:
        return f"DurableFuture({self.id!r})"


class Begin(Generic[T_co]):
    """A started call from ``begin_run``/``begin_rpc``: yield it to get the future."""

    __slots__ = ("future",)

    def __init__(self, future: DurableFuture[T_co]) -> None:
        self.future = future

    @property
    def id(self) -> str:
        return self.future.id

    def __await__(self) -> Generator[Any, None, T_co]:
        return self.future.__await__()
