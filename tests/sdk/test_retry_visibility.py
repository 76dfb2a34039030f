"""Issue 16, item 1: retries you can see, a bounded default, and errors that are not retried.

Failed attempts are logged at WARNING with their traceback; a call whose arguments do not
bind to the function is a ``SignatureError`` at once (never retried); a step raising
``NonRetryableError`` fails at once.  Every mode: the remote one runs against a real server.
"""

from __future__ import annotations

import logging

import pytest

from sustain import Context, Exponential, NonRetryableError, SignatureError
from sustain.sdk.retry import LEAF_DEFAULT
from tests.sdk.conftest import Make, unique

FAST = Exponential(delay=0.01)


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "sustain.sdk.invoke"]


def test_failed_attempts_are_warnings_with_the_traceback(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    sustain = make()
    attempts: list[int] = []

    @sustain.register(retry=FAST)
    def flaky(ctx: Context) -> str:
        attempts.append(ctx.info.attempt)
        if len(attempts) < 3:
            raise ConnectionError(f"down on attempt {len(attempts)}")
        return "ok"

    id = unique("flaky")
    with caplog.at_level(logging.WARNING, logger="sustain"):
        assert sustain.run(id, flaky).result(timeout=60) == "ok"
    records = retry_records(caplog)
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert all(id in r.getMessage() and "flaky" in r.getMessage() for r in records)
    assert [r.getMessage().split("attempt ")[1][0] for r in records] == ["1", "2"]
    assert all(r.exc_info and r.exc_info[0] is ConnectionError for r in records)
    assert "down on attempt 1" in caplog.text  # the traceback's last line


def test_the_default_leaf_policy_is_bounded() -> None:
    pauses = [LEAF_DEFAULT.pause(n) for n in range(1, 11)]
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60, 60, None]  # 10 attempts
    assert sum(p for p in pauses if p is not None) == 243  # about four minutes in all


def test_arguments_that_do_not_bind_fail_at_once(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    sustain = make()

    @sustain.register  # the default policy: a retried call would log a WARNING
    def add(ctx: Context, a: int, b: int) -> int:
        return a + b

    def no_ctx(order: str) -> str:  # a leaf written without its Context parameter
        return order

    @sustain.register
    def wf(ctx: Context):
        return (yield ctx.run(no_ctx, "o-1"))

    with caplog.at_level(logging.WARNING, logger="sustain"):
        with pytest.raises(SignatureError) as bad_call:
            sustain.run(unique("add"), add, 1, 2, 3).result(timeout=60)
        with pytest.raises(SignatureError) as no_context:
            sustain.run(unique("wf"), wf).result(timeout=60)
    assert bad_call.value.function == "add"
    assert "add(ctx, a, b) cannot be called with (ctx, 1, 2, 3)" in str(bad_call.value)
    assert "too many positional arguments" in bad_call.value.reason
    assert no_context.value.function == "no_ctx"
    assert "no_ctx(order) cannot be called with (ctx, 'o-1')" in str(no_context.value)
    assert "takes the Context first: write `def no_ctx(ctx: Context, order)`" in (
        no_context.value.reason
    )
    assert not [r for r in retry_records(caplog) if "retrying" in r.getMessage()]


def test_non_retryable_error_fails_the_step_at_once(make: Make) -> None:
    sustain = make()
    attempts: list[int] = []

    def charge(ctx: Context, card: str) -> str:
        attempts.append(ctx.info.attempt)
        raise NonRetryableError(f"card {card} declined")

    @sustain.register
    async def checkout(ctx: Context, card: str) -> str:
        try:
            return str(await ctx.options(retry=FAST).run(charge, card))
        except NonRetryableError as error:  # the class raised, rebuilt
            return f"{type(error).__name__}: {error}"

    got = sustain.run(unique("checkout"), checkout, "4242").result(timeout=60)
    assert got == "NonRetryableError: card 4242 declined"
    assert attempts == [1]
