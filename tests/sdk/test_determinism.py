"""A changed workflow replayed against an old execution fails with NondeterminismError."""

from __future__ import annotations

from typing import Any

import pytest

from sustain import Context, NondeterminismError
from tests.sdk.conftest import Make, unique
from tests.sdk.test_context import wait_pending


def charge(ctx: Context, amount: int) -> str:
    return f"charged {amount}"


def refund(ctx: Context, amount: int) -> str:
    return f"refunded {amount}"


@pytest.mark.parametrize("mode", ["file", "remote"], indirect=True)
def test_changed_workflow_raises_nondeterminism(make: Make) -> None:
    first = make()

    @first.register(name="order")
    def order_v1(ctx: Context, amount: int) -> Any:
        receipt = yield ctx.run(charge, amount)
        approval = yield ctx.promise()
        return [receipt, approval]

    id = unique("golden")
    first.run(id, order_v1, 10)
    wait_pending(first, f"{id}:2")
    history = first.promises.get(f"{id}:1")
    assert history["state"] == "resolved"
    first.stop()

    second = make()

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


def test_nondeterminism_error_carries_its_ids() -> None:
    err = NondeterminismError("wf.3", "charge", "refund")
    assert (err.id, err.recorded, err.found) == ("wf.3", "charge", "refund")
    assert "wf.3" in str(err)
