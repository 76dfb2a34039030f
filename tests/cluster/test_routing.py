"""Poll messages reach the replica holding the stream, at once; claimed messages survive a
replica's crash; a drained replica hands its work over.

Real ``sustain serve --postgres`` replicas on one database (conftest.py), SSE streams held
with httpx (tests/server/test_http_sse.py), and an HTTP endpoint of the test for pushes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.cluster.conftest import REPLICA_TIMEOUT_MS, Replicas
from tests.scenarios.processes import wait_until
from tests.server.test_http_sse import HOUR, Stream, now_ms, poll
from tests.servers import ServerProcess, unique

# Without a wake-up, an outbox loop would only look every minute: a message arriving within
# a few seconds was announced by NOTIFY.
SLOW = ("--messages-poll-interval", "60000", "--timeouts-poll-interval", "60000")
PROMPT = 5.0


def held(cluster: Replicas) -> set[tuple[str, str, str]]:
    rows = cluster.sql("SELECT replica, poll_group, poll_id FROM poll_connections")
    return {(r, g, i) for r, g, i in rows}


def create(server: ServerProcess, id: str, target: str) -> float:
    server.ok(
        "promise.create",
        {"id": id, "timeoutAt": now_ms() + HOUR, "tags": {"resonate:target": target}},
    )
    return time.monotonic()


async def receive(stream: Stream) -> tuple[str, float]:
    message = await stream.next_message()
    assert message["kind"] == "execute", message
    return message["data"]["task"]["id"], time.monotonic()


async def test_poll_messages_reach_the_replica_holding_the_stream_at_once(
    cluster: Replicas,
) -> None:
    a = cluster.start("ra", *SLOW)
    b = cluster.start("rb", *SLOW)
    group = unique("g")
    async with poll(b, group, "w1") as on_b, poll(a, group, "w2") as on_a:
        wait_until(
            lambda: {("rb", group, "w1"), ("ra", group, "w2")} <= held(cluster),
            10,
            "both streams published",
        )
        # uni@g/w1 written through A goes only to B's w1, although A holds a member of g.
        id1 = unique("uni")
        sent = await asyncio.to_thread(create, a, id1, f"poll://uni@{group}/w1")
        got, at = await receive(on_b)
        assert got == id1
        assert at - sent < PROMPT, f"{at - sent:.1f} s: the NOTIFY did not wake replica B"
        # any@g/w2 written through B prefers the replica holding w2: A.  A's stream never saw
        # id1: its first message is this one.
        id2 = unique("any")
        sent = await asyncio.to_thread(create, b, id2, f"poll://any@{group}/w2")
        got, at = await receive(on_a)
        assert got == id2
        assert at - sent < PROMPT
        # any@g (no id): a member of g on either replica.
        id3 = unique("anyg")
        await asyncio.to_thread(create, a, id3, f"poll://any@{group}")
        done, _ = await asyncio.wait(
            [asyncio.create_task(receive(on_a)), asyncio.create_task(receive(on_b))],
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert done.pop().result()[0] == id3
    # Closed streams are withdrawn.
    wait_until(lambda: not {r for r in held(cluster) if r[1] == group}, 10, "streams withdrawn")
    left = cluster.sql("SELECT count(*) FROM outgoing_execute WHERE task_id = %s", (id1,))
    assert left == [(0,)]


async def test_a_timer_written_on_a_fires_on_b_at_its_deadline(cluster: Replicas) -> None:
    # A's own loops are paused (debug.start): only B can fire the timer, and B's timer loop
    # would sleep a minute unless A's NOTIFY tells it of the new deadline.
    a = cluster.start("ra", "--debug", *SLOW)
    b = cluster.start("rb", *SLOW)
    assert a.ok("debug.start", {}) == {}
    group = unique("g")
    async with poll(b, group, "l") as on_b:
        wait_until(lambda: ("rb", group, "l") in held(cluster), 10, "stream published")
        id = unique("timer")
        deadline = now_ms() + 1500
        a.ok(
            "promise.create",
            {"id": id, "timeoutAt": deadline, "tags": {"resonate:target": "poll://any@nobody"}},
        )
        a.ok("promise.register_listener", {"awaited": id, "address": f"poll://uni@{group}/l"})
        message = await on_b.next_message()
        late = now_ms() - deadline
    assert message["kind"] == "unblock"
    assert message["data"]["promise"]["id"] == id
    assert message["data"]["promise"]["state"] == "rejected_timedout"
    assert late < PROMPT * 1000, f"fired {late} ms after its deadline"


class _Endpoint(BaseHTTPRequestHandler):
    """Records each push; holds the first one open until ``release`` is set."""

    bodies: list[bytes]
    release: threading.Event

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.bodies.append(body)
        if len(self.bodies) == 1:
            self.release.wait(60)
        try:
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
        except OSError:
            pass  # the replica that sent it is gone

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def endpoint() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    release = threading.Event()
    handler = type("Handler", (_Endpoint,), {"bodies": bodies, "release": release})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", bodies
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_message_claimed_by_a_killed_replica_is_delivered_by_another(
    cluster: Replicas,
) -> None:
    cluster.start("ra")
    cluster.start("rb")
    with endpoint() as (url, bodies):
        id = unique("push")
        create(cluster.running["ra"], id, url)
        # One replica claimed the execute and is pushing it: the endpoint holds the request.
        wait_until(lambda: len(bodies) == 1, 30, "the first push")
        rows = cluster.sql("SELECT claimed_by FROM outgoing_execute WHERE task_id = %s", (id,))
        assert len(rows) == 1 and rows[0][0] in ("ra", "rb"), rows
        claimer = rows[0][0]
        cluster.kill9(claimer)
        # The survivor claims it again once the killed replica's heartbeat is stale.
        killed = time.monotonic()
        wait_until(lambda: len(bodies) == 2, 30, "the push again, from the other replica")
        assert time.monotonic() - killed < 10 * REPLICA_TIMEOUT_MS / 1000
        first, again = (json.loads(body) for body in bodies)
        assert first["data"] == again["data"] == {"task": {"id": id, "version": 0}}
        # Each replica names itself as the serverUrl.
        assert first["head"] != again["head"]
        # Answered this time: acknowledged and deleted.
        wait_until(
            lambda: cluster.sql("SELECT count(*) FROM outgoing_execute") == [(0,)],
            30,
            "the outbox to empty",
        )


async def test_sigterm_drains_streams_and_hands_messages_to_the_others(
    cluster: Replicas,
) -> None:
    a = cluster.start("ra")
    b = cluster.start("rb")
    group = unique("g")
    async with poll(a, group, "w1") as on_a:
        wait_until(lambda: ("ra", group, "w1") in held(cluster), 10, "stream published")
        stopping = asyncio.create_task(asyncio.to_thread(a.stop))
        # The stream ends (the worker would reconnect elsewhere)...
        async with asyncio.timeout(30):
            async for _ in on_a.lines:
                pass
        assert await stopping == 0
    # ...and the replica left: no row of it remains.
    assert cluster.sql("SELECT id FROM replicas") == [("rb",)]
    assert {r for r in held(cluster) if r[0] == "ra"} == set()
    # The worker reconnects to B and gets what is sent to it.
    async with poll(b, group, "w1") as on_b:
        wait_until(lambda: ("rb", group, "w1") in held(cluster), 10, "stream published")
        id = unique("after")
        await asyncio.to_thread(create, b, id, f"poll://uni@{group}/w1")
        assert (await receive(on_b))[0] == id
