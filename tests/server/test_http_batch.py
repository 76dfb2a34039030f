"""``sustain.batch`` over HTTP against a real ``sustain serve`` (docs/decisions.md).

* Every element is answered exactly as the same request sent alone: a mixed batch run on one
  id set is compared field by field with the same requests sent one by one on a second set
  (SQLite, and once on PostgreSQL); answers keep the request order.
* A bad element is its own 400 (same message as alone); a bad list is the whole batch's 400.
* Auth: the outer token is authenticated once (bad → the batch's 401); each element is
  authorized on its own (a 403 is that element's answer).
* ``protocol.batch = false`` answers like a Resonate server: 400 ``Unknown operation``.
* The body limit covers the whole batch; metrics count each element by its kind.
* Durability: every write of an acknowledged batch survives ``kill -9`` of the server.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import msgspec
import pytest

from tests.servers import (
    VERSION,
    ServerProcess,
    acked_before_kill_9,
    free_port,
    start_server,
    unique,
)
from tests.store.postgres_db import temp_database

BATCH = "sustain.batch"
FAR = 9_000_000_000_000
TARGET = {"resonate:target": "poll://any@nobody-listens"}


def envelope(kind: str, data: Any, corr_id: str, **head: Any) -> dict[str, Any]:
    return {"kind": kind, "head": {"corrId": corr_id, "version": VERSION, **head}, "data": data}


def send_batch(
    server: ServerProcess, requests: Any, corr_id: str = "b", **head: Any
) -> tuple[int, Any]:
    """POST one batch; answer the HTTP status and the decoded body."""
    body = msgspec.json.encode(envelope(BATCH, {"requests": requests}, corr_id, **head))
    response = server.post(body)
    out = response.json()
    assert out["head"]["status"] == response.status_code
    assert (out["kind"], out["head"]["corrId"], out["head"]["version"]) == (BATCH, corr_id, VERSION)
    return response.status_code, out


def send_alone(server: ServerProcess, element: Any, corr_id: str, **head: Any) -> Any:
    """``element`` sent as a request of its own under the batch's head: the decoded answer."""
    body = {**element, "head": {"corrId": corr_id, "version": VERSION, **head}}
    response = server.post(msgspec.json.encode(body))
    out = response.json()
    assert out["head"]["status"] == response.status_code
    return out


def responses(server: ServerProcess, requests: list[Any], **head: Any) -> list[Any]:
    status, out = send_batch(server, requests, **head)
    assert status == 200, out
    answers: list[Any] = out["data"]["responses"]
    assert len(answers) == len(requests)
    return answers


# -- every element as if alone ---------------------------------------------------------------


def prepare(server: ServerProcess, tag: str) -> None:
    """What the mixed batch works on: an acquired task and an existing promise."""
    action = {
        "kind": "promise.create",
        "head": {},
        "data": {"id": f"{tag}-root", "timeoutAt": FAR, "tags": TARGET},
    }
    server.ok("task.create", {"pid": "w1", "ttl": 60_000, "action": action})
    server.ok("promise.create", {"id": f"{tag}-old", "timeoutAt": FAR, "tags": {"k": "v"}})


def mixed(tag: str) -> list[dict[str, Any]]:
    root = f"{tag}-root"

    def fence(version: int, child: str) -> dict[str, Any]:
        create = {"id": child, "timeoutAt": FAR, "param": {"data": "eyJ4IjogMX0="}}
        return {
            "id": root,
            "version": version,
            "action": {"kind": "promise.create", "head": {}, "data": create},
        }

    task_action = {
        "kind": "promise.create",
        "head": {},
        "data": {"id": f"{tag}-task", "timeoutAt": FAR, "tags": TARGET},
    }
    new = {
        "id": f"{tag}-new",
        "timeoutAt": FAR,
        "tags": {"t": "1"},
        "param": {"headers": {"h": "v"}, "data": "ZGF0YQ=="},
    }
    return [
        {"kind": "promise.create", "data": new},
        {"kind": "task.create", "data": {"pid": "w2", "ttl": 60_000, "action": task_action}},
        {"kind": "task.fence", "data": fence(1, f"{root}.1")},
        {"kind": "promise.get", "data": {"id": f"{tag}-old"}},
        {"kind": "promise.get", "data": {"id": f"{tag}-missing"}},  # 404
        {"kind": "task.fence", "data": fence(7, f"{root}.2")},  # 409: wrong version
        {"kind": "promise.create", "data": {"id": f"{tag}-old", "timeoutAt": 1}},  # the existing
        {"kind": "promise.create", "data": {"id": f"{tag}-bad", "timeoutAt": -1}},  # 400
    ]


def same_shape(answer: Any, tag: str) -> Any:
    """``answer`` with ``tag`` renamed and the server's clock readings left out."""
    text = json.dumps(answer).replace(tag, "TAG")

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("createdAt", "settledAt")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(json.loads(text))


def check_mixed_batch(server: ServerProcess) -> None:
    batched, alone = unique("bat"), unique("one")
    prepare(server, batched)
    prepare(server, alone)
    answers = responses(server, mixed(batched), corr_id="mix")
    singles = [send_alone(server, element, f"mix.{i}") for i, element in enumerate(mixed(alone))]
    statuses = [a["head"]["status"] for a in answers]
    assert statuses == [200, 200, 200, 200, 404, 409, 200, 400]
    for i, (a, s) in enumerate(zip(answers, singles, strict=True)):
        assert same_shape(a, batched) == same_shape(s, alone), i
    # The writes happened, and the batch's timestamps are real ones.
    assert server.ok("task.get", {"id": f"{batched}-task"})["task"]["state"] == "acquired"
    assert server.ok("promise.get", {"id": f"{batched}-root.1"})["promise"]["state"] == "pending"
    assert answers[0]["data"]["promise"]["createdAt"] > 0


def test_each_element_is_answered_as_if_sent_alone(server: ServerProcess) -> None:
    check_mixed_batch(server)


def test_answers_keep_the_request_order(server: ServerProcess) -> None:
    tag = unique("order")
    requests: list[dict[str, Any]] = []
    for i in range(60):
        if i % 3 == 0:
            requests.append({"kind": "promise.get", "data": {"id": f"{tag}-{i}"}})
        else:
            requests.append(
                {
                    "kind": "promise.create",
                    "head": {"corrId": f"mine-{i}"},
                    "data": {"id": f"{tag}-{i}", "timeoutAt": FAR},
                }
            )
    answers = responses(server, requests, corr_id="ord")
    for i, answer in enumerate(answers):
        if i % 3 == 0:
            assert (answer["kind"], answer["head"]["corrId"]) == ("promise.get", f"ord.{i}")
            assert (answer["head"]["status"], answer["data"]) == (404, "Promise not found")
        else:
            assert (answer["kind"], answer["head"]["corrId"]) == ("promise.create", f"mine-{i}")
            assert answer["data"]["promise"]["id"] == f"{tag}-{i}"


# -- bad elements, bad batches ---------------------------------------------------------------


def test_a_bad_element_is_its_own_400(server: ServerProcess) -> None:
    tag = unique("bad")
    bad: list[Any] = [
        {"kind": "no.such.op", "data": {}},
        {"kind": "", "data": {}},
        {"kind": "promise.get", "data": [1]},
        {"kind": "promise.get", "data": None},
        {"kind": "promise.get"},
        {"data": {}},
        {"kind": 5, "data": {}},
        {"kind": "promise.get", "data": {}},  # the op's own parse error
        {"kind": "promise.create", "data": {"id": tag, "timeoutAt": 1.5}},
        {
            "kind": "task.create",
            "data": {
                "pid": "w",
                "ttl": 1,
                "action": {
                    "kind": "promise.create",
                    "head": {},
                    "data": {"id": tag, "timeoutAt": FAR},
                },
            },
        },
    ]
    good = {"kind": "promise.create", "data": {"id": tag, "timeoutAt": FAR}}
    requests = [good, *[{**e, "head": {"corrId": f"e{i}"}} for i, e in enumerate(bad)]]
    answers = responses(server, requests)
    assert answers[0]["head"]["status"] == 200
    for i, (element, answer) in enumerate(zip(bad, answers[1:], strict=True)):
        assert answer["head"]["status"] == 400, (element, answer)
        alone = send_alone(server, element, f"e{i}")
        assert answer == alone, element
    assert server.ok("promise.get", {"id": tag})["promise"]["id"] == tag


def test_non_objects_and_nested_batches_are_their_own_400(server: ServerProcess) -> None:
    nested = {"kind": BATCH, "head": {"corrId": "n"}, "data": {"requests": []}}
    get = {"kind": "promise.get", "data": {"id": unique("x")}}
    answers = responses(server, [5, "x", None, [], nested, get], corr_id="nb")
    messages = [(a["kind"], a["head"]["corrId"], a["head"]["status"], a["data"]) for a in answers]
    assert messages == [
        ("unknown", "nb.0", 400, "Invalid request envelope: Expected `object`, got `int`"),
        ("unknown", "nb.1", 400, "Invalid request envelope: Expected `object`, got `str`"),
        ("unknown", "nb.2", 400, "Invalid request envelope: Expected `object`, got `null`"),
        ("unknown", "nb.3", 400, "Invalid request envelope: Expected `object`, got `array`"),
        (BATCH, "n", 400, "Invalid batch: nested batch"),
        ("promise.get", "nb.5", 404, "Promise not found"),
    ]


def test_sub_heads_are_ignored_but_their_corr_id(server: ServerProcess) -> None:
    get = {"kind": "promise.get", "data": {"id": unique("h")}}
    heads: list[Any] = [
        {"corrId": "kept", "version": "v0", "auth": "junk"},  # only corrId is read
        {"corrId": 7},  # not a string: the default
        "not an object",  # ignored: the default
    ]
    answers = responses(server, [{**get, "head": h} for h in heads], corr_id="hd")
    assert [(a["head"]["corrId"], a["head"]["status"]) for a in answers] == [
        ("kept", 404),
        ("hd.1", 404),
        ("hd.2", 404),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Invalid batch: missing 'requests'"),
        ({"requests": None}, "Invalid batch: 'requests' must be an array"),
        ({"requests": {"kind": "promise.get"}}, "Invalid batch: 'requests' must be an array"),
        ({"requests": "x"}, "Invalid batch: 'requests' must be an array"),
        ({"requests": []}, "Invalid batch: 'requests' is empty"),
        ({"requests": [{}] * 1001}, "Invalid batch: 1001 requests, at most 1000 allowed"),
    ],
)
def test_a_bad_list_is_the_whole_batch_400(
    server: ServerProcess, data: dict[str, Any], message: str
) -> None:
    response = server.post(msgspec.json.encode(envelope(BATCH, data, "whole")))
    assert response.status_code == 400
    assert response.json() == {
        "kind": BATCH,
        "head": {"corrId": "whole", "status": 400, "version": VERSION},
        "data": message,
    }


def test_a_thousand_requests_are_one_batch(server: ServerProcess) -> None:
    tag = unique("k")
    requests = [{"kind": "promise.get", "data": {"id": f"{tag}-{i}"}} for i in range(1000)]
    answers = responses(server, requests)
    assert {a["head"]["status"] for a in answers} == {404}


def test_outer_envelope_errors_are_answered_as_usual(server: ServerProcess) -> None:
    body = {"kind": BATCH, "head": {"corrId": "v", "version": "v0"}, "data": {"requests": [{}]}}
    response = server.post(msgspec.json.encode(body))
    assert response.status_code == 400
    assert response.json()["data"].startswith("Unsupported protocol version 'v0'")
    bad = {"kind": BATCH, "head": {"corrId": "d", "version": VERSION}, "data": [1]}
    response = server.post(msgspec.json.encode(bad))
    assert (response.status_code, response.json()["data"]) == (
        400,
        "Invalid 'data' field — must be an object",
    )


def test_the_body_limit_covers_the_whole_batch(spawn: Any) -> None:
    small = spawn("--max-body-size", "1000")
    get = {"kind": "promise.get", "data": {"id": "x"}}
    response = small.post(msgspec.json.encode(envelope(BATCH, {"requests": [get] * 40}, "big")))
    assert response.status_code == 413
    assert response.json()["data"] == "Request body too large"
    # The 413 closes its connection: the next batch goes on a new one.
    small_batch = msgspec.json.encode(envelope(BATCH, {"requests": [get]}, "small"))
    assert httpx.post(small.url + "/", content=small_batch, timeout=10).status_code == 200


# -- configuration, metrics ------------------------------------------------------------------


def test_batch_off_is_an_unknown_operation(tmp_path: Path, spawn: Any) -> None:
    # The spawn fixture runs the server in tmp_path, where it reads sustain.toml.
    (tmp_path / "sustain.toml").write_text("[protocol]\nbatch = false\n")
    strict = spawn()
    get = {"kind": "promise.get", "data": {"id": "x"}}
    status, out = send_batch(strict, [get], corr_id="off")
    assert (status, out["data"]) == (400, "Unknown operation: sustain.batch")
    assert strict.rpc("promise.get", {"id": "x"}).status == 404  # single requests as usual


def test_metrics_count_each_element_by_kind(spawn: Any) -> None:
    port = free_port()
    server = spawn("--metrics-port", str(port))
    tag = unique("m")
    requests = [
        {"kind": "promise.create", "data": {"id": f"{tag}-1", "timeoutAt": FAR}},
        {"kind": "promise.create", "data": {"id": f"{tag}-2", "timeoutAt": FAR}},
        {"kind": "promise.get", "data": {"id": f"{tag}-3"}},
        {"kind": "no.such.op", "data": {}},
    ]
    responses(server, requests)
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    for line in (
        'sustain_request_total{kind="promise.create",status="200"} 2.0',
        'sustain_request_total{kind="promise.get",status="404"} 1.0',
        'sustain_request_total{kind="unknown",status="400"} 1.0',
        'sustain_request_total{kind="sustain.batch",status="200"} 1.0',
    ):
        assert line in text, line


# -- auth ------------------------------------------------------------------------------------


def unsigned(**claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, None, algorithm="none")


def test_auth_once_for_the_batch_and_authorize_each_element(spawn: Any) -> None:
    server = spawn("--auth-publickey", "none")
    mine, theirs = unique("team-a"), unique("team-b")
    requests = [
        {"kind": "promise.create", "data": {"id": mine, "timeoutAt": FAR}},
        {"kind": "promise.create", "data": {"id": theirs, "timeoutAt": FAR}},
        {"kind": "promise.search", "data": {}},
        {"kind": "no.such.op", "data": {}},  # auth runs before dispatch, as alone
        {"kind": "promise.get", "data": {"id": mine}},
    ]
    team = unsigned(prefix="team-a")
    answers = responses(server, requests, auth=team)
    assert [
        (a["head"]["status"], a["data"] if a["head"]["status"] != 200 else "ok") for a in answers
    ] == [
        (200, "ok"),
        (403, "Forbidden"),
        (403, "Forbidden"),
        (403, "Forbidden"),
        (200, "ok"),
    ]
    for element, answer in zip(requests[1:4], answers[1:4], strict=True):
        assert send_alone(server, element, answer["head"]["corrId"], auth=team) == answer
    admin = responses(server, requests[1:3], auth=unsigned(role="admin"))
    assert [a["head"]["status"] for a in admin] == [200, 200]

    expired = unsigned(role="admin", exp=int(time.time()) - 3600)
    for auth in (None, "not-a-jwt", expired):
        head = {} if auth is None else {"auth": auth}
        # A token in an element's head is not read: only the outer one counts.
        inner = [{**requests[0], "head": {"auth": unsigned(role="admin")}}]
        status, out = send_batch(server, inner, corr_id="denied", **head)
        assert (status, out["data"]) == (401, "Unauthorized"), auth
    # An invalid batch from an unauthenticated client is its 401, not its 400.
    status, out = send_batch(server, [], corr_id="empty")
    assert (status, out["data"]) == (401, "Unauthorized")


# -- durability ------------------------------------------------------------------------------

CLIENTS = 8
PER_BATCH = 25
ACKED_BEFORE_KILL = 600


async def batch_load(
    server: ServerProcess, acked: dict[str, Any], stop: threading.Event, clients: int
) -> None:
    """``clients`` loops of batches of ``PER_BATCH`` creates until ``stop``; every promise of
    an answered batch lands in ``acked`` by id (``acked_before_kill_9``'s load)."""

    async def client(n: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            i = 0
            while not stop.is_set():
                i += 1
                ids = [f"kb-{n}-{i}-{j}-{unique('x')}" for j in range(PER_BATCH)]
                requests = [
                    {
                        "kind": "promise.create",
                        "data": {"id": pid, "timeoutAt": FAR, "tags": {"c": str(n)}},
                    }
                    for pid in ids
                ]
                body = msgspec.json.encode(envelope(BATCH, {"requests": requests}, f"{n}-{i}"))
                try:
                    response = await http.post("/", content=body)
                except httpx.HTTPError:
                    return  # the server is gone: an unanswered batch may be lost
                if response.status_code == 200:
                    for pid, answer in zip(ids, response.json()["data"]["responses"], strict=True):
                        assert answer["head"]["status"] == 200, answer
                        acked[pid] = answer["data"]["promise"]

    await asyncio.gather(*(client(n) for n in range(clients)))


def test_acknowledged_batches_survive_kill_9(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    snapshot = acked_before_kill_9(first, CLIENTS, ACKED_BEFORE_KILL, batch_load)
    second = start_server(tmp_path, "--sqlite-path", str(first.db))
    try:
        ids = list(snapshot)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            gets = [{"kind": "promise.get", "data": {"id": pid}} for pid in chunk]
            for pid, answer in zip(chunk, responses(second, gets), strict=True):
                assert answer["data"] == {"promise": snapshot[pid]}, pid
    finally:
        second.stop()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with temp_database() as url:
        proc = start_server(tmp_path_factory.mktemp("pgbatch"), "--postgres", url)
        yield proc
        proc.stop()


def test_each_element_is_answered_as_if_sent_alone_on_postgres(pg_server: ServerProcess) -> None:
    check_mixed_batch(pg_server)


# -- tracing ---------------------------------------------------------------------------------


def console_spans(log: str) -> list[dict[str, Any]]:
    """The spans the console exporter printed (one JSON object each) in a server log."""
    decoder = json.JSONDecoder()
    spans = []
    at = log.find("\n{")
    while at != -1:
        try:
            span, end = decoder.raw_decode(log, at + 1)
        except ValueError:
            end = at + 2
        else:
            if isinstance(span, dict) and "context" in span:
                spans.append(span)
        at = log.find("\n{", end)
    return spans


def test_each_element_is_its_own_span_in_its_executions_trace(tmp_path: Path) -> None:
    pytest.importorskip("opentelemetry.sdk")
    server = start_server(tmp_path, env={"OTEL_TRACES_EXPORTER": "console"})
    a, b = unique("ta"), unique("tb")
    try:
        requests = [
            {"kind": "promise.create", "data": {"id": a, "timeoutAt": FAR}},
            {"kind": "promise.create", "data": {"id": f"{a}.1", "timeoutAt": FAR}},
            {"kind": "promise.create", "data": {"id": b, "timeoutAt": FAR}},
        ]
        responses(server, requests, corr_id="tr")
    finally:
        server.stop()
    spans = {
        s["attributes"]["sustain.corr_id"]: s
        for s in console_spans(server.output())
        if s["name"] == "sustain promise.create"
    }
    assert set(spans) == {"tr.0", "tr.1", "tr.2"}
    trace = {corr: span["context"]["trace_id"] for corr, span in spans.items()}
    assert trace["tr.0"] == trace["tr.1"] != trace["tr.2"]  # by origin, as when sent alone
