"""The cancel walk (protocol/cancel.py) driven against the engine on a memory store."""

from __future__ import annotations

from typing import Any

import pytest

from sustain.protocol.cancel import CancelFailed, below, drive, in_detached, walk
from tests.engine.harness import Harness

D = "wf:d0123456789abcdef"  # a detached call of wf


def tree(h: Harness, *ids: str) -> None:
    for id in ids:
        h.create(id, tags={"resonate:origin": "wf"})


def states(h: Harness) -> dict[str, str]:
    return {p["id"]: p["state"] for p in h.snap()["promises"]}


def test_the_root_first_then_descendants_shallowest_first() -> None:
    h = Harness()
    tree(h, "wf", "wf:2", "wf:1.1.1", "wf:1", "wf:1.1", D, f"{D}.1")
    h.create("wf2", tags={"resonate:origin": "wf2"})  # a prefix of wf's text, not below it
    report = drive(walk("wf"), h.call)
    assert report.canceled == ("wf", "wf:1", "wf:2", "wf:1.1", "wf:1.1.1")
    assert report.message() == "canceled wf and 4 pending descendant(s)"
    assert states(h) == {
        "wf": "rejected_canceled", "wf:1": "rejected_canceled", "wf:1.1": "rejected_canceled",
        "wf:1.1.1": "rejected_canceled", "wf:2": "rejected_canceled",
        D: "pending", f"{D}.1": "pending", "wf2": "pending",
    }  # fmt: skip


def test_detached_calls_only_when_asked_and_a_detached_call_by_its_own_id() -> None:
    h = Harness()
    tree(h, "wf", "wf:1", D, f"{D}.1")
    assert drive(walk("wf", detached=True), h.call).canceled == ("wf", "wf:1", D, f"{D}.1")
    h2 = Harness()
    tree(h2, "wf", D, f"{D}.1")
    assert drive(walk(D), h2.call).canceled == (D, f"{D}.1")
    assert states(h2)["wf"] == "pending"


def test_a_settled_execution_is_a_noop_and_a_second_cancel_too() -> None:
    h = Harness()
    tree(h, "wf", "wf:1")
    h.settle("wf", "resolved")
    report = drive(walk("wf"), h.call)
    assert (report.noop, report.state) == (True, "resolved")
    assert report.message() == "wf is already resolved: nothing to cancel"
    assert states(h)["wf:1"] == "pending"  # nothing written
    h2 = Harness()
    tree(h2, "wf", "wf:1")
    assert not drive(walk("wf"), h2.call).noop
    assert drive(walk("wf"), h2.call).message() == (
        "wf is already rejected_canceled: nothing to cancel"
    )


def test_an_unknown_id_fails_with_the_server_message() -> None:
    with pytest.raises(CancelFailed) as failed:
        drive(walk("nobody"), Harness().call)
    assert (failed.value.status, failed.value.message) == (404, "Promise not found")


def test_every_page_of_the_search_and_children_created_meanwhile() -> None:
    h = Harness()
    tree(h, "wf", *(f"wf:{i}" for i in range(1, 8)))
    searches = 0

    def request(kind: str, data: dict[str, Any]) -> tuple[int, Any]:
        nonlocal searches
        if kind == "promise.search":
            searches += 1
            data = {**data, "limit": 3}  # pages of 3: the walk must follow the cursor
        if kind == "promise.settle" and data["id"] == "wf:7":
            tree(h, "wf:7.1")  # a child created while the walk runs: the next round finds it
        return h.call(kind, data)

    report = drive(walk("wf"), request)
    assert report.canceled == ("wf", *(f"wf:{i}" for i in range(1, 8)), "wf:7.1")
    assert searches == 3 + 1 + 1  # three pages, the round that finds wf:7.1, an empty one


def test_ids_below_and_in_detached() -> None:
    assert below("wf:1", "wf") and below("wf:1.2", "wf:1") and not below("wf:12", "wf:1")
    assert not below("wf", "wf") and not below("wf2:1", "wf")
    assert in_detached(D, "wf") and in_detached(f"{D}.3", "wf")
    assert not in_detached(f"{D}.3", D) and not in_detached("wf:d12", "wf")
