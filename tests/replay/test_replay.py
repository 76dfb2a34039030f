"""``sustain.testing.replay``: golden histories recorded by ``tests/replay/orders.py``'s v1
(``sustain export --store``, committed in ``histories/``) replayed against each deploy.

``order-done.json`` is a completed execution (charge, sleep, ship); ``order-waiting.json``
one suspended on its sleep.  No replay may run a leaf: every leaf appends to ``ORDERS_LOG``
and the log must stay empty.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sustain import Context, NondeterminismError
from sustain.errors import AsyncUsageError, InvalidHistoryError
from sustain.testing.replay import areplay, replay
from tests.replay import orders

HISTORIES = Path(__file__).parent / "histories"
DONE = HISTORIES / "order-done.json"
WAITING = HISTORIES / "order-waiting.json"


@pytest.fixture(autouse=True)
def leaf_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    log = tmp_path / "leaves.log"
    monkeypatch.setenv("ORDERS_LOG", str(log))
    yield log
    assert not log.exists(), f"a replay ran a leaf: {log.read_text()}"


def test_a_completed_history_replays_cleanly_to_its_recorded_result() -> None:
    report = replay(orders.order, DONE)
    assert report.status == "completed"
    assert report.value == [5, "shipped order-done"]  # the recorded step values, not re-run
    assert report.steps == 3


def test_the_app_given_resolves_renamed_steps_and_a_changed_leaf_body_is_compatible() -> None:
    report = replay(orders.order_compatible, WAITING, sustain=orders.compatible)
    assert (report.status, report.steps) == ("suspended", 2)  # at the recorded pending sleep


def test_a_step_inserted_before_the_recorded_sleep_diverges_at_that_step() -> None:
    with pytest.raises(NondeterminismError) as caught:
        replay(orders.order_diverging, WAITING)
    error = caught.value
    assert (error.step, error.recorded, error.found) == (2, "sleep", "audit")
    assert error.id == "order-waiting:2"
    assert "step 2" in str(error)


def test_a_step_added_after_a_completed_history_diverges() -> None:
    # The execution completed after three steps; the new code makes a fourth.
    with pytest.raises(NondeterminismError) as caught:
        replay(orders.order_compatible, DONE, sustain=orders.compatible)
    assert (caught.value.step, caught.value.found) == (4, "notify")
    assert "ended" in caught.value.recorded


def test_a_step_added_after_the_frontier_of_a_pending_history_is_compatible() -> None:
    def order_more(ctx: Context, id: str, amount: int) -> Any:
        receipt = yield ctx.run(orders.charge, amount)
        yield ctx.sleep(60)
        yield ctx.run(orders.notify, id)  # not reached yet by the recorded execution
        return receipt

    assert replay(order_more, WAITING).status == "suspended"


def test_a_workflow_that_returns_before_the_recorded_steps_end_diverges() -> None:
    def order_short(ctx: Context, id: str, amount: int) -> Any:
        receipt = yield ctx.run(orders.charge, amount)
        return receipt

    with pytest.raises(NondeterminismError) as caught:
        replay(order_short, DONE)
    assert (caught.value.step, caught.value.recorded) == (2, "sleep")
    assert "returns" in caught.value.found


def test_an_unrecorded_leaf_at_the_frontier_is_not_run() -> None:
    # order-done as it stood between its sleep and ship (a worker about to create ship's
    # promise): the root pending, ship not recorded.
    document = json.loads(DONE.read_text())
    document["promises"] = [p for p in document["promises"] if p["id"] != "order-done:3"]
    document["promises"][0].update(state="pending", value={}, settledAt=None)
    report = replay(orders.order, document)
    assert (report.status, report.steps) == ("suspended", 3)  # ship called, not run (log)


def test_a_workflow_that_raises_on_the_recorded_values_is_reported_failed() -> None:
    def order_reads_a_new_field(ctx: Context, id: str, amount: int) -> Any:
        receipt = yield ctx.run(orders.charge, amount)
        return receipt["currency"]  # v1 recorded no currency

    report = replay(order_reads_a_new_field, WAITING)
    assert report.status == "failed"
    assert isinstance(report.error, KeyError)


def test_the_history_may_be_a_path_text_or_document() -> None:
    text = DONE.read_text()
    assert replay(orders.order, str(DONE)).status == "completed"
    assert replay(orders.order, text).status == "completed"
    assert replay(orders.order, json.loads(text)).status == "completed"


def test_areplay_on_a_running_loop_and_replay_refuses_one() -> None:
    async def main() -> str:
        with pytest.raises(AsyncUsageError):
            replay(orders.order, DONE)
        return (await areplay(orders.order, DONE)).status

    assert asyncio.run(main()) == "completed"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "not JSON"),
        ('{"format": "other"}', "not a Sustain history"),
        ('{"format": "sustain.history", "version": 99}', "version 99 is not supported"),
        ('{"format": "sustain.history", "version": 1, "root": "x", "promises": []}',
         "'x' is not among"),
    ],
)  # fmt: skip
def test_a_bad_history_is_a_typed_error(tmp_path: Path, content: str, reason: str) -> None:
    path = tmp_path / "h.json"
    path.write_text(content)
    with pytest.raises(InvalidHistoryError) as caught:
        replay(orders.order, path)
    assert reason in str(caught.value)
    with pytest.raises(InvalidHistoryError, match="No such file"):
        replay(orders.order, tmp_path / "missing.json")


async def send_receipt(ctx: Context, id: str, amount: int) -> str:
    orders.charge(ctx, amount)  # a side effect: the fixture fails the test if it ran
    return "sent"


def test_a_leaf_execution_is_never_run() -> None:
    # A pending execution with no recorded call: an async def leaf looks like a workflow
    # that has not called anything yet, and a plain def is always a leaf.
    document = json.loads(WAITING.read_text())
    document["promises"] = document["promises"][:1]
    assert replay(send_receipt, document).status == "not-run"
    assert replay(orders.charge, document).status == "not-run"
