"""The poll registry's selection rules (PROTOCOL.md §1.6), without HTTP."""

from __future__ import annotations

import random

import pytest

from sustain.runtime import poll
from sustain.runtime.poll import PollRegistry


def test_uni_goes_to_the_first_connection_with_the_id() -> None:
    reg = PollRegistry(10, 10)
    a1 = reg.register("g", "a")
    a2 = reg.register("g", "a")
    b = reg.register("g", "b")
    assert a1 is not None and a2 is not None and b is not None
    assert reg.select("uni", "g", "a") is a1
    assert reg.select("uni", "g", "b") is b
    assert reg.select("uni", "g", "zzz") is None
    assert reg.select("uni", "g", None) is None
    assert reg.select("uni", "other", "a") is None


def test_any_prefers_the_id_else_picks_uniformly() -> None:
    reg = PollRegistry(10, 10, rng=random.Random(7))
    conns = [reg.register("g", name) for name in ("a", "b", "c")]
    assert reg.select("any", "g", "b") is conns[1]
    picked = {id(reg.select("any", "g", "nope")) for _ in range(200)}
    assert picked == {id(c) for c in conns}
    picked = {id(reg.select("any", "g", None)) for _ in range(200)}
    assert picked == {id(c) for c in conns}
    assert reg.select("any", "empty", None) is None


async def test_full_buffers_drop_and_closed_connections_leave() -> None:
    reg = PollRegistry(2, 2)
    conn = reg.register("g", "a")
    assert conn is not None
    assert reg.deliver("uni", "g", "a", b"1")
    assert reg.deliver("uni", "g", "a", b"2")
    assert not reg.deliver("uni", "g", "a", b"3")  # buffer of 2 is full: dropped
    assert await conn.drain(1.0) == [b"1", b"2"]
    assert reg.register("g", "b") is not None
    assert reg.register("g", "c") is None  # capacity 2
    reg.unregister(conn)
    assert len(reg) == 1
    assert reg.register("g", "c") is not None
    assert not reg.deliver("uni", "g", "a", b"4")


async def test_drain_wakes_on_offer_and_on_close() -> None:
    reg = PollRegistry(10, 10)
    conn = reg.register("g", "a")
    assert conn is not None
    assert await conn.drain(0.01) == []  # idle: nothing
    reg.close_all()
    assert conn.closed
    assert await conn.drain(3600) == []  # closed: returns at once


def test_streams_are_counted_per_owner() -> None:
    reg = PollRegistry(10, 10)
    a1 = reg.register("tA-g", "w1", owner="tA-")
    a2 = reg.register("tA-h", "w2", owner="tA-")
    anonymous = reg.register("g", "w3")
    assert a1 is not None and a2 is not None and anonymous is not None
    assert (reg.owned("tA-"), reg.owned("tB-"), len(reg)) == (2, 0, 3)
    reg.unregister(a1)
    reg.unregister(a1)  # twice: counted once
    assert reg.owned("tA-") == 1
    reg.unregister(a2)
    reg.unregister(anonymous)
    assert (reg.owned("tA-"), len(reg)) == (0, 0)


def test_a_pinned_execute_goes_only_to_a_stream_serving_its_version() -> None:
    reg = PollRegistry(10, 10, rng=random.Random(3))
    official = reg.register("g", "official")  # announced nothing
    v1 = reg.register("g", "v1", functions={"job": frozenset({1})})
    v12 = reg.register("g", "v12", functions={"job": frozenset({1, 2}), "x": frozenset({5})})
    assert official is not None and v1 is not None and v12 is not None
    assert {id(reg.select("any", "g", None, ("job", 1))) for _ in range(200)} == {id(v1), id(v12)}
    assert {reg.select("any", "g", None, ("job", 2)) for _ in range(50)} == {v12}
    # the preferred id is kept only when it serves the version
    assert reg.select("any", "g", "v1", ("job", 1)) is v1
    assert reg.select("any", "g", "official", ("job", 2)) is v12
    assert reg.select("any", "g", None, ("job", 3)) is None  # nobody serves v3: dropped
    assert reg.select("any", "g", None, ("other", 1)) is None
    assert not reg.deliver("any", "g", None, b"x", ("job", 3))
    # unpinned work goes anywhere, official SDK streams included
    picked = {id(reg.select("any", "g", None)) for _ in range(200)}
    assert picked == {id(official), id(v1), id(v12)}


async def test_an_anycast_message_nobody_takes_waits_for_the_groups_next_stream() -> None:
    reg = PollRegistry(10, 10)
    assert not reg.deliver("any", "g", None, b"exec-1")  # no stream yet: dropped, parked
    assert not reg.deliver("any", "g", "pid-9", b"exec-2")  # a preferred id changes nothing
    assert not reg.deliver("any", "g", None, b"exec-1")  # the timer's re-send: kept once
    assert not reg.deliver("uni", "g", "a", b"unblock")  # unicast: for that process only
    assert not reg.deliver("any", "other", None, b"elsewhere")
    assert reg.parked() == 3
    conn = reg.register("g", "a")
    assert conn is not None
    assert await conn.drain(0.1) == [b"exec-2", b"exec-1"]  # oldest first; no unblock
    assert reg.parked() == 1  # only the other group's
    late = reg.register("g", "b")
    assert late is not None and not late._buffer  # delivered once, not to every newcomer


async def test_a_parked_pinned_execute_waits_for_a_stream_that_serves_its_version() -> None:
    reg = PollRegistry(10, 10)
    assert not reg.deliver("any", "g", None, b"v2-job", ("job", 2))
    v1 = reg.register("g", "v1", functions={"job": frozenset({1})})
    official = reg.register("g", "sdk")  # announces nothing: never a pinned execute
    assert v1 is not None and official is not None
    assert reg.parked() == 1
    v2 = reg.register("g", "v2", functions={"job": frozenset({2})})
    assert v2 is not None
    assert await v2.drain(0.1) == [b"v2-job"]
    assert reg.parked() == 0


def test_parking_is_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(poll, "PARKED", 3)
    reg = PollRegistry(10, 10)
    for n in range(5):
        reg.deliver("any", "g", None, b"%d" % n)
    assert reg.parked() == 3
    conn = reg.register("g", "a")
    assert conn is not None and list(conn._buffer) == [b"2", b"3", b"4"]
