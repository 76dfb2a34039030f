"""Queues in the engine (engine/queues.py): when execute messages go out, on the memory store
with explicit times.  The same rules over real worker processes: tests/server/test_queues*.py."""

from __future__ import annotations

from typing import Any

from tests.engine.harness import Harness, T, executes, settle_action

Q = "sustain:queue"


def queue(h: Harness, name: str = "q", **limits: Any) -> Any:
    return h.ok("sustain.queue.create", {"name": name, **limits})["queue"]


def sent(h: Harness) -> list[str]:
    """The task ids with an execute in the outbox, in id order."""
    return [id for _, id, _ in executes(h.snap())]


def taken(h: Harness) -> list[str]:
    """Drain the outbox (as the delivery loop would): the task ids it held, by id."""
    ids = sent(h)
    h.store.run(lambda tx: tx.claim_outbox(1000))
    return ids


def fulfil(h: Harness, id: str, version: int = 1) -> None:
    h.ok("task.fulfill", {"id": id, "version": version, "action": settle_action(id)})


def test_concurrency_holds_and_a_freed_slot_goes_out_in_the_same_operation() -> None:
    h = Harness()
    queue(h, concurrency=2)
    for i in range(5):
        h.task(f"t{i}", **{Q: "q"})
    assert taken(h) == ["t0", "t1"]
    h.acquire("t0")
    h.acquire("t1")
    fulfil(h, "t0")
    assert taken(h) == ["t2"]
    info = h.ok("sustain.queue.get", {"name": "q"})["queue"]
    assert (info["running"], info["waiting"], info["dispatched"]) == (2, 2, 3)


def test_priority_first_then_fifo() -> None:
    h = Harness()
    queue(h, concurrency=1)
    h.task("a", **{Q: "q"})  # takes the slot
    for id, priority in [("p5", "5"), ("p1x", "1"), ("p3", "3"), ("p1y", "1")]:
        h.task(id, **{Q: "q", "sustain:priority": priority})
    assert taken(h) == ["a"]
    order = []
    current = "a"
    for _ in range(4):
        h.acquire(current)
        fulfil(h, current)
        (current,) = taken(h)
        order.append(current)
    assert order == ["p1x", "p1y", "p3", "p5"]
    waiting = h.ok("sustain.queue.get", {"name": "q"})["queue"]
    assert waiting["waiting"] == 0 and waiting["running"] == 1


def test_per_key_limit_and_fairness_across_keys() -> None:
    h = Harness()
    queue(h, concurrency=2, per_key_concurrency=1)
    for id, key in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b")]:
        h.task(id, **{Q: "q", "sustain:key": key})
    # a1 runs; a2 is held by its key's limit, b1 takes the second slot
    assert taken(h) == ["a1", "b1"]
    h.acquire("b1")
    fulfil(h, "b1")
    assert taken(h) == []  # only key a waits, and a1 holds its key's slot
    h.acquire("a1")
    fulfil(h, "a1")
    assert taken(h) == ["a2"]


def test_rate_is_smoothed_and_the_timer_pass_lets_the_next_out() -> None:
    h = Harness()
    queue(h, rate="2/s")  # one every 500 ms
    for i in range(3):
        h.task(f"t{i}", **{Q: "q"})
    assert taken(h) == ["t0"]
    assert h.ok("sustain.queue.get", {"name": "q"})["queue"]["nextDispatchAt"] == 1_500
    h.tick(1_499)
    assert taken(h) == []
    h.tick(1_500)
    assert taken(h) == ["t1"]
    h.tick(2_000)
    assert taken(h) == ["t2"]


def test_suspended_workflow_holds_no_slot_and_waits_again_when_resumed() -> None:
    h = Harness()
    queue(h, concurrency=1)
    h.task("wf", **{Q: "q"})
    h.task("other", **{Q: "q"})
    h.create("wf.child")
    assert taken(h) == ["wf"]
    h.acquire("wf")
    assert h.suspend("wf", 1, "wf.child")[0] == 200
    assert taken(h) == ["other"]  # the slot went to the next task
    h.acquire("other")
    h.settle("wf.child")  # wf resumes: it waits for a slot
    assert taken(h) == []
    fulfil(h, "other")
    assert taken(h) == ["wf"]


def test_lapsed_lease_frees_the_slot() -> None:
    h = Harness()
    queue(h, concurrency=1)
    h.task("a", **{Q: "q"})
    h.task("b", **{Q: "q"})
    assert taken(h) == ["a"]
    h.acquire("a", ttl=5_000)  # its worker dies
    h.tick(6_000)
    # a's slot went to b; a went to the back of the queue
    assert taken(h) == ["b"]
    h.acquire("b")
    fulfil(h, "b")
    assert taken(h) == ["a"]


def test_release_and_halt_free_the_slot() -> None:
    h = Harness()
    queue(h, concurrency=1)
    for id in "abc":
        h.task(id, **{Q: "q"})
    assert taken(h) == ["a"]
    h.acquire("a")
    h.ok("task.release", {"id": "a", "version": 1})
    assert taken(h) == ["b"]
    h.ok("task.halt", {"id": "b"})  # dispatched, not acquired: halting frees it too
    assert taken(h) == ["c"]


def test_settling_a_waiting_promise_removes_it_from_the_queue() -> None:
    h = Harness()
    queue(h, concurrency=1)
    h.task("a", **{Q: "q"})
    h.task("b", **{Q: "q"})
    h.settle("b", "rejected_canceled")
    info = h.ok("sustain.queue.get", {"name": "q"})["queue"]
    assert (info["running"], info["waiting"]) == (1, 0)


def test_unknown_queue_runs_unlimited() -> None:
    h = Harness()
    for i in range(3):
        h.task(f"t{i}", **{Q: "nope"})
    assert taken(h) == ["t0", "t1", "t2"]
    assert h.error("sustain.queue.get", {"name": "nope"}) == (404, "Queue not found")


def test_task_create_acquires_when_there_is_room_and_waits_otherwise() -> None:
    h = Harness()
    queue(h, concurrency=1)

    def create(id: str) -> Any:
        data = {"id": id, "timeoutAt": 1_000_000, "tags": {"resonate:target": T, Q: "q"}}
        action = {"kind": "promise.create", "head": {}, "data": data}
        return h.ok("task.create", {"pid": "me", "ttl": 5_000, "action": action})

    assert create("a")["task"]["state"] == "acquired"
    second = create("b")
    assert second["task"]["state"] == "pending" and taken(h) == []
    fulfil(h, "a")
    assert taken(h) == ["b"]


def test_raising_the_limit_dispatches_at_once_and_delete_drains() -> None:
    h = Harness()
    queue(h, concurrency=1)
    for i in range(4):
        h.task(f"t{i}", **{Q: "q"})
    assert taken(h) == ["t0"]
    assert queue(h, concurrency=2)["running"] == 2
    assert taken(h) == ["t1"]
    h.ok("sustain.queue.delete", {"name": "q"})
    assert taken(h) == ["t2", "t3"]
    assert h.ok("sustain.queue.list", {})["queues"] == []


def test_bad_queue_requests_are_400_with_a_clear_message() -> None:
    h = Harness()
    create = "sustain.queue.create"
    assert h.error(create, {"name": "q", "concurrency": 0}) == (
        400, "Queue concurrency must be a positive integer (got 0)"
    )  # fmt: skip
    assert h.error(create, {"name": "q", "per_key_concurrency": -1})[0] == 400
    status, message = h.error(create, {"name": "q", "rate": "100/fortnight"})
    assert status == 400 and message.startswith("Invalid queue rate '100/fortnight'")
    assert h.error(create, {"name": "q", "rate": "0/s"})[0] == 400
    assert h.error(create, {"name": ""})[0] == 400
    assert h.error("sustain.queue.delete", {"name": "q"}) == (404, "Queue not found")
    bad = {"resonate:target": T, Q: "q", "sustain:priority": "high"}
    status, message = h.error("promise.create", {"id": "x", "timeoutAt": 9, "tags": bad})
    assert (status, message) == (400, "sustain:priority must be an integer (got 'high')")
    assert queue(h, concurrency=3, rate="5/10s")["rate"] == "5/10s"


def test_dedup_attaches_a_second_promise_with_the_same_key_to_the_pending_one() -> None:
    h = Harness()
    queue(h, concurrency=5, dedup=True)
    tags = {Q: "q", "sustain:key": "order-7"}
    h.task("first", **tags)
    second = h.task("second", **tags)
    assert second["tags"]["sustain:dedup-of"] == "first"
    other = h.task("other", **{Q: "q", "sustain:key": "order-8"})
    assert "sustain:dedup-of" not in other["tags"]
    assert taken(h) == ["first", "other"]  # no task, no execute for the duplicate
    assert h.call("task.get", {"id": "second"})[0] == 404
    h.acquire("first")
    h.ok("task.fulfill", {"id": "first", "version": 1, "action": settle_action("first")})
    assert h.get_promise("second")["state"] == "resolved"
    # the original is done: the same key starts a new execution
    third = h.task("third", **tags)
    assert "sustain:dedup-of" not in third["tags"] and taken(h) == ["third"]


def test_dedup_is_off_by_default_and_a_client_may_not_set_the_tag() -> None:
    h = Harness()
    queue(h, concurrency=5)
    h.task("a", **{Q: "q", "sustain:key": "k"})
    assert "sustain:dedup-of" not in h.task("b", **{Q: "q", "sustain:key": "k"})["tags"]
    bad = {"resonate:target": T, "sustain:dedup-of": "a"}
    status, message = h.error("promise.create", {"id": "x", "timeoutAt": 9_000, "tags": bad})
    assert (status, message) == (400, "sustain:dedup-of is set by the server, not by a client")
