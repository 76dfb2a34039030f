"""A changed workflow replayed against an old execution: paused until fixed code resumes it
(``on_code_mismatch="pause"``, the default), or failed with NondeterminismError (``"fail"``)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sustain import Context, NondeterminismError
from tests.sdk.conftest import Make, unique
from tests.sdk.test_context import wait_pending


def charge(ctx: Context, amount: int) -> str:
    return f"charged {amount}"


def refund(ctx: Context, amount: int) -> str:
    return f"refunded {amount}"


def order_v1(ctx: Context, amount: int) -> Any:
    receipt = yield ctx.run(charge, amount)
    approval = yield ctx.promise()
    return [receipt, approval]


def started(make: Make) -> str:
    """An execution of ``order`` (v1) that ran its charge and waits on its promise."""
    first = make()
    first.register(order_v1, name="order")
    id = unique("golden")
    first.run(id, order_v1, 10)
    wait_pending(first, f"{id}:2")
    history = first.promises.get(f"{id}:1")
    assert history["state"] == "resolved"
    first.stop()
    return id


@pytest.mark.parametrize("mode", ["file", "remote"], indirect=True)
def test_changed_workflow_raises_nondeterminism_when_mismatches_fail(make: Make) -> None:
    id = started(make)
    second = make(on_code_mismatch="fail")  # today's behaviour, kept by the option

    @second.register(name="order")
    def order_v2(ctx: Context, amount: int) -> Any:
        receipt = yield ctx.run(refund, amount)  # was charge: the history disagrees
        approval = yield ctx.promise()
        return [receipt, approval]

    second.promises.resolve(f"{id}:2", "ok")
    with pytest.raises(NondeterminismError) as failure:
        second.get(id).result(timeout=30)
    error = failure.value  # the same class, with its attributes, across processes too
    assert (error.id, error.recorded, error.found) == (f"{id}:1", "charge", "refund")
    assert "'charge'" in str(error) and "'refund'" in str(error)


@pytest.mark.parametrize("mode", ["file", "remote"], indirect=True)
def test_changed_workflow_pauses_until_fixed_code_resumes_it(make: Make) -> None:
    id = started(make)
    second = make()  # on_code_mismatch="pause", the default

    @second.register(name="order")
    def order_v2(ctx: Context, amount: int) -> Any:
        receipt = yield ctx.run(refund, amount)  # was charge: the history disagrees
        return [receipt]

    second.promises.resolve(f"{id}:2", "ok")
    handle = second.get(id)
    deadline = time.monotonic() + 60
    status = handle.status()
    while status.paused is None and time.monotonic() < deadline:
        time.sleep(0.1)
        status = handle.status()
    assert status.state == "pending"
    assert status.paused is not None and status.paused.startswith("NondeterminismError")
    assert f"at '{id}:1'" in status.paused  # the first diverging step
    assert "'charge'" in status.paused and "'refund'" in status.paused
    assert status.own is not None and status.own.attempts >= 1
    assert status.own.next_retry_at is not None
    time.sleep(1.5)  # released and taken again at least once: still pending, not rejected
    assert second.promises.get(id)["state"] == "pending"
    second.stop()

    fixed = make()  # the deploy: v1's code again
    fixed.register(order_v1, name="order")
    assert fixed.get(id).result(timeout=60) == ["charged 10", "ok"]
    assert fixed.get(id).status().paused is None


def test_nondeterminism_error_carries_its_ids() -> None:
    err = NondeterminismError("wf.3", "charge", "refund")
    assert (err.id, err.recorded, err.found) == ("wf.3", "charge", "refund")
    assert "wf.3" in str(err)
