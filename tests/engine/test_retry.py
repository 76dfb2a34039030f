"""``sustain.retry`` through ``Engine.apply`` (engine/retry.py): what is copied, under which
ids and tags, what the new root is, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.engine.harness import Harness, T, executes

DETACHED = "wf:d0123456789abcdef"


def child(
    h: Harness, id: str, parent: str, state: str, *, rpc: bool = False, branch: str = "wf"
) -> None:
    """A child as the SDK tags it: an rpc is a branch of its own, a step its caller's."""
    branch = id if rpc else branch
    tags = {"resonate:origin": "wf", "resonate:branch": branch, "resonate:parent": parent}
    if rpc:
        tags["resonate:target"] = T
    else:
        tags["resonate:scope"] = "local"
    h.create(id, 500_000, tags, param={"data": "eyJmdW5jIjoiZiJ9"})
    if state != "pending":
        h.settle(id, state, value={"data": "MQ=="})


def failed_tree(h: Harness) -> None:
    """wf (rejected): 1 resolved; 2 an rpc, resolved, with 2.1 resolved; 3 rejected with 3.1
    resolved and 3.2 rejected; 4 pending; a detached call and an explicit id, resolved."""
    h.create("wf", 101_000, {"resonate:origin": "wf", "resonate:branch": "wf",
                             "resonate:parent": "wf", "resonate:target": T,
                             "resonate:delay": "2000"}, param={"data": "eA=="})  # fmt: skip
    child(h, "wf:1", "wf", "resolved")
    child(h, "wf:2", "wf", "resolved", rpc=True)
    child(h, "wf:2.1", "wf:2", "resolved", branch="wf:2")
    child(h, "wf:3", "wf", "rejected")
    child(h, "wf:3.1", "wf:3", "resolved")
    child(h, "wf:3.2", "wf:3", "rejected")
    child(h, "wf:4", "wf", "pending")
    child(h, DETACHED, "wf", "resolved", rpc=True)
    child(h, "wf:pay", "wf", "resolved")
    h.settle("wf", "rejected")


def retry(h: Harness, **data: Any) -> Any:
    return h.ok("sustain.retry", {"id": "wf", **data}, now=5_000)


def test_the_topmost_resolved_children_are_copied_and_the_new_root_started() -> None:
    h = Harness()
    failed_tree(h)
    answer = retry(h)
    new = "wf~retry-1"
    # 2.1 lies under a resolved copy (never replayed); the detached call mints another id
    assert answer["copied"] == [f"{new}:1", f"{new}:2", f"{new}:3.1", f"{new}:pay"]
    assert answer["created"] is True
    root = answer["promise"]
    assert (root["id"], root["state"], root["param"]) == (new, "pending", {"data": "eA=="})
    assert root["tags"] == {"resonate:origin": new, "resonate:branch": new,
                            "resonate:parent": new, "resonate:target": T,
                            "sustain:retry-of": "wf"}  # fmt: skip
    assert root["timeoutAt"] == 5_000 + 100_000  # the old execution's time to complete
    assert (new, 0) in [(id, v) for _, id, v in executes(h.snap())]

    step = h.get_promise(f"{new}:3.1")
    assert (step["state"], step["value"]) == ("resolved", {"data": "MQ=="})
    assert step["createdAt"] == step["settledAt"] == 5_000
    assert step["tags"] == {"resonate:origin": new, "resonate:branch": new,
                            "resonate:parent": f"{new}:3", "resonate:scope": "local"}  # fmt: skip
    assert h.get_promise(f"{new}:2")["tags"]["resonate:branch"] == f"{new}:2"
    assert h.get_task(f"{new}:2")["state"] == "fulfilled"  # an rpc copy's task is done
    assert h.get_promise("wf")["state"] == "rejected"  # the failed run is left as it was
    # the copies are what the new root's task preloads (its branch)
    claim = h.acquire(new)
    assert sorted(p["id"] for p in claim["preload"]) == [f"{new}:1", f"{new}:3.1", f"{new}:pay"]


@pytest.mark.parametrize(
    ("from_step", "copied"),
    [(1, []), (2, [":1"]), (4, [":1", ":2", ":3.1"]), (99, [":1", ":2", ":3.1"])],
)
def test_from_step_copies_only_the_steps_before_it(from_step: int, copied: list[str]) -> None:
    h = Harness()
    failed_tree(h)
    answer = retry(h, fromStep=from_step)
    assert answer["copied"] == [f"wf~retry-1{c}" for c in copied]  # never the explicit id


def test_derived_ids_count_on_from_the_base_id() -> None:
    h = Harness()
    failed_tree(h)
    assert retry(h)["promise"]["id"] == "wf~retry-1"
    assert retry(h)["promise"]["id"] == "wf~retry-2"
    h.settle("wf~retry-2", "rejected_canceled")
    again = h.ok("sustain.retry", {"id": "wf~retry-2"})
    assert again["promise"]["id"] == "wf~retry-3"
    assert again["promise"]["tags"]["sustain:retry-of"] == "wf~retry-2"


def test_a_given_new_id_answers_the_same_retry_again() -> None:
    h = Harness()
    failed_tree(h)
    first = retry(h, newId="again")
    assert first["copied"][0] == "again:1"
    second = retry(h, newId="again")
    assert (second["promise"], second["copied"], second["created"]) == (
        first["promise"], [], False,
    )  # fmt: skip
    h.create("taken", 9_000_000)
    assert h.error("sustain.retry", {"id": "wf", "newId": "taken"}) == (409, "Already exists")


def test_a_pending_root_past_its_deadline_times_out_and_is_retried() -> None:
    h = Harness()
    h.task("late", 2_000)
    answer = h.ok("sustain.retry", {"id": "late"}, now=3_000)
    assert h.get_promise("late")["state"] == "rejected_timedout"
    assert answer["promise"]["timeoutAt"] == 3_000 + 1_000


def test_what_did_not_fail_or_is_no_execution_is_refused() -> None:
    h = Harness()
    assert h.error("sustain.retry", {"id": "nope"}) == (404, "Promise not found")
    h.task("running")
    assert h.error("sustain.retry", {"id": "running"}) == (
        409, "Promise is pending: only a failed execution is retried",
    )  # fmt: skip
    h.task("done")
    h.settle("done")
    assert h.error("sustain.retry", {"id": "done"})[1].startswith("Promise is resolved")
    h.create("plain", 9_000_000)
    h.settle("plain", "rejected")
    assert h.error("sustain.retry", {"id": "plain"}) == (
        422, "The promise does not have a resonate:target tag",
    )  # fmt: skip
    assert h.snap()["promises"] == [h.get_promise(i) for i in ("done", "plain", "running")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": ""}, "Promise ID is required"),
        ({"id": "wf", "newId": ""}, "newId must not be empty"),
        ({"id": "wf", "newId": "wf:9"}, "newId must not be id, above it or below it"),
        ({"id": "wf:1", "newId": "wf"}, "newId must not be id, above it or below it"),
        ({"id": "wf", "newId": "x.y"}, "newId must contain '.' or ':' exactly when id does"),
        ({"id": "wf", "newId": "a\x00"}, "newId must not contain null bytes"),
        ({"id": "wf", "fromStep": 0}, "fromStep must be a positive integer"),
        ({"id": "wf", "timeoutAt": -1}, "TimeoutAt must be a non-negative integer"),
    ],
)
def test_bad_requests_are_400(data: dict[str, Any], message: str) -> None:
    assert Harness().error("sustain.retry", data) == (400, message)


def test_mistyped_fields_are_400() -> None:
    status, message = Harness().error("sustain.retry", {"id": "wf", "fromStep": "2"})
    assert (status, message.startswith("Invalid request:")) == (400, True)
