"""The ``Network`` contract through both implementations: answers, executes, unblocks, timers."""

from __future__ import annotations

import base64

from sustain.sdk.network import Answer
from tests.servers import unique

from .conftest import HOUR, Inbox, Network, now_ms, wait_until


async def listening(network: Network, group: str, pid: str, inbox: Inbox) -> None:
    network.listen(group, pid, inbox)
    await wait_until(lambda: network.listening(group, pid))


async def test_create_settle_round_trip(network: Network) -> None:
    pid = unique("rt")
    value = base64.b64encode(b'{"x": 1}').decode()
    created = await network.request(
        "promise.create",
        {"id": pid, "timeoutAt": now_ms() + HOUR, "param": {"headers": {"a": "b"}, "data": value}},
    )
    assert isinstance(created, Answer)
    assert created.status == 200
    promise = created.data["promise"]
    assert (promise["id"], promise["state"]) == (pid, "pending")
    assert promise["param"] == {"headers": {"a": "b"}, "data": value}

    settled = await network.request(
        "promise.settle", {"id": pid, "state": "resolved", "value": {"data": value}}
    )
    assert settled.status == 200
    assert settled.data["promise"]["state"] == "resolved"
    assert settled.data["promise"]["value"]["data"] == value

    got = await network.request("promise.get", {"id": pid})
    assert got == Answer(200, settled.data)


async def test_protocol_errors_are_answers(network: Network) -> None:
    missing = await network.request("promise.get", {"id": unique("missing")})
    assert missing.status == 404
    assert isinstance(missing.data, str)
    unknown = await network.request("promise.nope", {})
    assert unknown == Answer(400, "Unknown operation: promise.nope")
    invalid = await network.request("promise.create", {"id": unique("bad")})
    assert invalid.status == 400
    assert isinstance(invalid.data, str)


async def test_execute_to_anycast_listener(network: Network) -> None:
    group, inbox = unique("g"), Inbox()
    await listening(network, group, "w1", inbox)
    pid = unique("any")
    answer = await network.request(
        "promise.create",
        {
            "id": pid,
            "timeoutAt": now_ms() + HOUR,
            "tags": {"resonate:target": network.anycast(group)},
        },
    )
    assert answer.status == 200
    message = await inbox.execute(pid)
    assert message["data"] == {"task": {"id": pid, "version": 0}}
    assert isinstance(message["head"], dict)


async def test_execute_to_unicast_listener(network: Network) -> None:
    group, mine, other = unique("g"), Inbox(), Inbox()
    await listening(network, group, "a", other)
    await listening(network, group, "b", mine)
    first, second = unique("uni"), unique("uni")
    for pid in (first, second):
        target = network.unicast(group, "b")
        assert target == f"poll://uni@{group}/b"
        answer = await network.request(
            "promise.create",
            {"id": pid, "timeoutAt": now_ms() + HOUR, "tags": {"resonate:target": target}},
        )
        assert answer.status == 200
    await mine.execute(first)
    await mine.execute(second)
    # Nothing addressed to "b" went to "a" (a later message to "a" arrives alone).
    third = unique("uni")
    await network.request(
        "promise.create",
        {
            "id": third,
            "timeoutAt": now_ms() + HOUR,
            "tags": {"resonate:target": network.unicast(group, "a")},
        },
    )
    await other.execute(third)
    assert [m["data"]["task"]["id"] for m in other.messages] == [third]


async def test_unblock_to_registered_listener(network: Network) -> None:
    group, inbox = unique("g"), Inbox()
    await listening(network, group, "client", inbox)
    pid = unique("awaited")
    await network.request("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR})
    registered = await network.request(
        "promise.register_listener",
        {"awaited": pid, "address": network.unicast(group, "client")},
    )
    assert registered.status == 200
    settled = await network.request(
        "promise.settle", {"id": pid, "state": "rejected", "value": {"data": "eA=="}}
    )
    message = await inbox.unblock(pid)
    assert message["data"]["promise"] == settled.data["promise"]
    assert message["data"]["promise"]["state"] == "rejected"


async def test_timer_settles_and_unblocks(network: Network) -> None:
    """The background loop times a target promise out; its listener hears of it.

    Only promises with a ``resonate:target`` have a timeout row (PROTOCOL.md §3.2); a
    target-less one times out lazily, when next read.
    """
    group, inbox = unique("g"), Inbox()
    await listening(network, group, "client", inbox)
    nobody = network.anycast(unique("idle"))  # the executes go nowhere: only timers matter
    timed, timer = unique("timeout"), unique("timer")
    await network.request(
        "promise.create",
        {"id": timed, "timeoutAt": now_ms() + 200, "tags": {"resonate:target": nobody}},
    )
    await network.request(
        "promise.create",
        {
            "id": timer,
            "timeoutAt": now_ms() + 200,
            "tags": {"resonate:target": nobody, "resonate:timer": "true"},
        },
    )
    for pid in (timed, timer):
        answer = await network.request(
            "promise.register_listener",
            {"awaited": pid, "address": network.unicast(group, "client")},
        )
        assert answer.status == 200
        if answer.data["promise"]["state"] != "pending":
            # Already timed out when we registered (a slow machine): the answer says so.
            inbox({"kind": "unblock", "data": answer.data})
    assert (await inbox.unblock(timed))["data"]["promise"]["state"] == "rejected_timedout"
    assert (await inbox.unblock(timer))["data"]["promise"]["state"] == "resolved"
