"""HTTP push delivery to a local receiver (PROTOCOL.md §4.3): body, content type, bearer auth."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.servers import unique

HOUR = 3_600_000


class Receiver:
    """A tiny HTTP server on 127.0.0.1 that records every POST it gets."""

    def __init__(self, status: int = 200) -> None:
        self.requests: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.put((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def next(self) -> tuple[str, dict[str, str], Any]:
        path, headers, body = self.requests.get(timeout=30)
        return path, headers, json.loads(body)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_execute_and_unblock_are_pushed_with_the_bearer_token(
    spawn: Any, receiver: Receiver
) -> None:
    server = spawn(
        "--http-push-auth-mode",
        "bearer",
        "--http-push-auth-token",
        "s3cret",
        "--url",
        "http://sustain.example:8001",
    )
    pid = unique("push")
    now = int(time.time() * 1000)
    server.ok(
        "promise.create",
        {"id": pid, "timeoutAt": now + HOUR, "tags": {"resonate:target": receiver.url + "/run"}},
    )
    path, headers, body = receiver.next()
    assert path == "/run"
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["content-type"] == "application/json"
    assert body == {
        "kind": "execute",
        "head": {"serverUrl": "http://sustain.example:8001"},
        "data": {"task": {"id": pid, "version": 0}},
    }

    other = unique("push-listened")
    server.ok("promise.create", {"id": other, "timeoutAt": now + HOUR})
    server.ok("promise.register_listener", {"awaited": other, "address": receiver.url + "/done"})
    settled = server.ok("promise.settle", {"id": other, "state": "rejected"})["promise"]
    path, headers, body = receiver.next()
    assert path == "/done"
    assert body == {"kind": "unblock", "head": {}, "data": {"promise": settled}}


def test_push_without_auth_sends_no_authorization(spawn: Any, receiver: Receiver) -> None:
    server = spawn()
    pid = unique("plain")
    server.ok(
        "promise.create",
        {
            "id": pid,
            "timeoutAt": int(time.time() * 1000) + HOUR,
            "tags": {"resonate:target": receiver.url},
        },
    )
    _, headers, body = receiver.next()
    assert "authorization" not in headers
    assert body["data"]["task"]["id"] == pid


def test_failing_receivers_do_not_stop_delivery(spawn: Any, receiver: Receiver) -> None:
    failing = Receiver(status=500)
    try:
        server = spawn()
        now = int(time.time() * 1000)
        dead = unique("dead")
        server.ok(
            "promise.create",
            {
                "id": dead,
                "timeoutAt": now + HOUR,
                "tags": {"resonate:target": "http://127.0.0.1:9/x"},
            },
        )
        bad = unique("bad")
        server.ok(
            "promise.create",
            {"id": bad, "timeoutAt": now + HOUR, "tags": {"resonate:target": failing.url}},
        )
        assert failing.next()[2]["data"]["task"]["id"] == bad
        good = unique("good")
        server.ok(
            "promise.create",
            {"id": good, "timeoutAt": now + HOUR, "tags": {"resonate:target": receiver.url}},
        )
        assert receiver.next()[2]["data"]["task"]["id"] == good
        assert server.client.get("/ready").status_code == 200
    finally:
        failing.close()


def test_a_timer_tick_pushes_what_it_claimed(spawn: Any, receiver: Receiver) -> None:
    """A tick claims its messages in its own transaction and hands them to the outbox loop
    (runtime/loops.py): an HTTP address is pushed from there, with the outbox loop's cap an
    hour so that nothing but the hand-over can send it."""
    server = spawn("--messages-poll-interval", "3600000")
    pid = unique("timed-push")
    server.ok(
        "promise.create",
        {
            "id": pid,
            "timeoutAt": int(time.time() * 1000) + 300,
            "tags": {"resonate:target": "poll://any@nobody-listens"},  # due in the tick
        },
    )
    server.ok("promise.register_listener", {"awaited": pid, "address": receiver.url + "/late"})
    path, _, body = receiver.next()
    assert path == "/late"
    assert body["kind"] == "unblock"
    assert body["data"]["promise"]["id"] == pid
    assert body["data"]["promise"]["state"] == "rejected_timedout"
