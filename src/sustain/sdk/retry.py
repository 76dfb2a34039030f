"""Retry policies for leaves (plain functions).

``pause(attempt)`` is the pause in seconds before retry number ``attempt`` (1 = the first
retry), or ``None`` to stop.  Leaves default to ``Exponential()``: 1 s, doubling, capped at
60 s, at most 9 retries (10 attempts, about 4 minutes in all).  Bounded, as DBOS's default
is and Temporal's is not: a step that fails ten times over four minutes is almost always a
bug or an outage that needs a person, and an unbounded default hides it behind a caller that
waits forever; a transient blip (a restart, a failover) is over well within the bound.
Workflows default to ``Never()`` because re-running a workflow body would mint new child
ids.  The runtime never sleeps past the promise's timeout (``next_delay``).  Exceptions whose
type is in ``non_retryable``, a ``NonRetryableError`` raised by the step, and the SDK's own
errors that a retry cannot fix (``ALWAYS_FINAL``) fail at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sustain.errors import (
    DefinitionError,
    FunctionNotFoundError,
    NondeterminismError,
    NonRetryableError,
    SerializationError,
    SignatureError,
)

# Errors that a retry cannot fix: the same code with the same arguments fails the same way.
ALWAYS_FINAL: tuple[type[BaseException], ...] = (
    SerializationError,
    NondeterminismError,
    FunctionNotFoundError,
    NonRetryableError,
    SignatureError,
    DefinitionError,
)


@dataclass(frozen=True)
class RetryPolicy:
    non_retryable: tuple[type[BaseException], ...] = field(default=(), kw_only=True)

    def pause(self, attempt: int) -> float | None:
        raise NotImplementedError

    def retries(self, exc: BaseException) -> bool:
        return not isinstance(exc, self.non_retryable + ALWAYS_FINAL)

    def next_delay(
        self, attempt: int, exc: BaseException, now_ms: int, timeout_at: int
    ) -> float | None:
        """The pause before retry ``attempt`` after ``exc``, or None when the call must fail."""
        if not self.retries(exc):
            return None
        pause = self.pause(attempt)
        if pause is None or now_ms + pause * 1000 >= timeout_at:
            return None
        return pause


@dataclass(frozen=True)
class Exponential(RetryPolicy):
    """``min(delay * factor ** (attempt - 1), max_delay)``."""

    delay: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0
    max_retries: int | None = 9  # None: until the call's deadline

    def pause(self, attempt: int) -> float | None:
        if self.max_retries is not None and attempt > self.max_retries:
            return None
        return float(min(self.delay * self.factor ** (attempt - 1), self.max_delay))


@dataclass(frozen=True)
class Linear(RetryPolicy):
    """``delay * attempt``."""

    delay: float = 1.0
    max_retries: int | None = 3

    def pause(self, attempt: int) -> float | None:
        if self.max_retries is not None and attempt > self.max_retries:
            return None
        return self.delay * attempt


@dataclass(frozen=True)
class Constant(RetryPolicy):
    """The same pause before every retry."""

    delay: float = 1.0
    max_retries: int | None = 3

    def pause(self, attempt: int) -> float | None:
        if self.max_retries is not None and attempt > self.max_retries:
            return None
        return self.delay


@dataclass(frozen=True)
class Never(RetryPolicy):
    """No retries."""

    def pause(self, attempt: int) -> float | None:
        return None


LEAF_DEFAULT: RetryPolicy = Exponential()
WORKFLOW_DEFAULT: RetryPolicy = Never()
