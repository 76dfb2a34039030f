"""``sustain.status.set`` / ``.get`` over a real server (docs/protocol.md): the record round
trips with the server's ``updatedAt``, and bad input is a 400 or 404 with a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sustain.protocol.status import MAX_IDS, MAX_TRACEBACK
from tests.servers import ServerProcess, start_server, unique

FAR = 2**53


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("status")
    proc = start_server(tmp)
    yield proc
    proc.stop()


def test_a_record_round_trips_with_the_servers_time(server: ServerProcess) -> None:
    id = unique("p")
    server.ok("promise.create", {"id": id, "timeoutAt": FAR})
    record = {"attempts": 3, "errorType": "ConnectionError", "message": "down",
              "traceback": "Traceback ...", "nextRetryAt": 1_000, "updatedAt": 5}  # fmt: skip
    written = server.ok("sustain.status.set", {"id": id, "status": record})
    assert written["id"] == id
    assert written["status"]["updatedAt"] > 5  # the server's clock, not the client's
    got = server.ok("sustain.status.get", {"ids": [id, unique("none")]})
    assert got == {"statuses": {id: written["status"]}}
    server.ok("promise.settle", {"id": id, "state": "resolved"})
    assert server.ok("sustain.status.get", {"ids": [id]})["statuses"][id]["attempts"] == 3


@pytest.mark.parametrize(
    ("kind", "data", "status", "message"),
    [
        ("sustain.status.set", {"id": "nope", "status": {"attempts": 1}}, 404,
         "Promise not found"),
        ("sustain.status.set", {"id": "", "status": {"attempts": 1}}, 400,
         "Promise ID is required"),
        ("sustain.status.set", {"id": "x", "status": {"attempts": -1}}, 400,
         "Invalid request: Expected `int` >= 0 - at `$.status.attempts`"),
        ("sustain.status.set", {"id": "x", "status": {"traceback": "t" * (MAX_TRACEBACK + 1)}},
         400, f"Invalid status: 'traceback' is longer than {MAX_TRACEBACK} characters"),
        ("sustain.status.get", {"ids": []}, 400,
         "Invalid 'ids' — must be a non-empty array of promise ids"),
        ("sustain.status.get", {"ids": ["x"] * (MAX_IDS + 1)}, 400,
         f"Invalid 'ids' — at most {MAX_IDS} ids allowed"),
        ("sustain.status.get", {"ids": "x"}, 400,
         "Invalid request: Expected `array`, got `str` - at `$.ids`"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_4xx(
    server: ServerProcess, kind: str, data: object, status: int, message: str
) -> None:
    answer = server.rpc(kind, data)
    assert (answer.head_status, answer.data) == (status, message)
