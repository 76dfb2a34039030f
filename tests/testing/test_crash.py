"""``crash_test`` as a user runs it (``pytester``, the plugin from its entry point): a
workflow whose steps are idempotent survives a crash before and after every checkpoint, with
each step run at most once more than without a crash; a deliberately non-idempotent step
(a charge that appends to a ledger and returns the ledger's length) is found, by name."""

from __future__ import annotations

import pytest

USER_TESTS = """
from datetime import timedelta

import pytest
from sustain import Context
from sustain.testing import CrashTestFailure


def double(ctx: Context, x: int) -> int:
    return 2 * x


def order(ctx: Context, x: int):
    a = yield ctx.run(double, x)
    yield ctx.sleep(timedelta(hours=1))
    b = yield ctx.run(double, a)
    return a + b


def test_an_idempotent_workflow_survives_every_crash(sustain_env):
    report = sustain_env.crash_test(order, 3)
    assert report.outcome == 18
    assert len(report.checkpoints) >= 6  # the start, each step's create and settle, the end
    kinds = {kind for kind, _ in report.checkpoints}
    assert {"task.create", "task.fulfill"} <= kinds
    assert len(report.scenarios) == 2 * len(report.checkpoints)  # before and after each
    assert report.runs["double"] == 2
    # each step runs at most once more than without a crash: once per lost checkpoint
    assert report.max_runs("double") == 3
    assert report.reran("double")  # and some crash did lose one


ledger = []


def charge(ctx: Context, amount: int) -> int:
    ledger.append(amount)  # the outside world: a second run charges twice
    return len(ledger)


def pay(ctx: Context, amount: int):
    total = yield ctx.run(double, amount)
    receipt = yield ctx.run(charge, total)
    return receipt


def test_a_non_idempotent_step_is_found(sustain_env):
    with pytest.raises(CrashTestFailure) as failure:
        sustain_env.crash_test(pay, 5, before_each=ledger.clear)
    assert "charge" in failure.value.suspects
    assert failure.value.expected == 1 and failure.value.got == 2
    assert failure.value.scenario.when in ("before", "after")
    assert "charge" in str(failure.value)
"""


@pytest.mark.slow
def test_crash_test_as_a_user_runs_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
