"""Bounded work (issue 13, items 6-8) against a real ``sustain serve`` process.

* 6: a search answers a cursor before its answer passes ``limits.max_answer_size``, and the
  client pages through every promise; a batch of large searches answers at most about that
  much in all (the elements past the budget answer 413 without running), and the server's
  peak memory (``VmHWM`` in /proc) stays far below what the unbounded answer needed.  On
  SQLite and on PostgreSQL, since the paging lives in each store.
* 7: a cron expression over ``limits.max_cron_length`` is a 400 before any parsing, so 20
  schedules of 4 MiB expressions leave no memory behind (they used to stay in the cron cache).
* 8: an over-limit heartbeat, cron, tag filter or batch is refused with a 400 (by
  construction: the count is checked before any store work) and the server keeps answering.

No timing is asserted anywhere: sizes, statuses and memory only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tests.servers import VERSION, ServerProcess, start_server, unique
from tests.store.postgres_db import temp_database

FAR = 9_000_000_000_000
MIB = 1024 * 1024
PAYLOAD = 64 * 1024  # characters of param data per promise
COUNT = 200  # promises: 12.5 MiB of params in all
DEFAULT_ANSWER = 16 * MIB


def rss(server: ServerProcess, field: str = "VmRSS") -> int:
    """A memory figure of the server process from /proc, in bytes."""
    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{server.proc.pid}/status")


def batch(server: ServerProcess, requests: list[dict[str, Any]]) -> tuple[int, bytes]:
    body = {
        "kind": "sustain.batch",
        "head": {"corrId": unique("b"), "version": VERSION},
        "data": {"requests": requests},
    }
    response = server.post(msgspec.json.encode(body))
    return response.status_code, response.content


def fill(server: ServerProcess, tag: str) -> list[str]:
    """COUNT promises of PAYLOAD characters each, tagged ``set=tag``; their ids in order."""
    data = "A" * PAYLOAD
    ids = sorted(f"{tag}-{i:04d}" for i in range(COUNT))
    for id in ids:
        server.ok(
            "promise.create",
            {"id": id, "timeoutAt": FAR, "param": {"data": data}, "tags": {"set": tag}},
        )
    return ids


@pytest.fixture(params=["sqlite", "postgres"])
def store_flags(request: pytest.FixtureRequest) -> Iterator[tuple[str, ...]]:
    if request.param == "sqlite":
        yield ()
    else:
        with temp_database() as url:
            yield ("--postgres", url)


@pytest.fixture
def launch(tmp_path: Path, store_flags: tuple[str, ...]) -> Iterator[Any]:
    started: list[ServerProcess] = []

    def _launch(*flags: str) -> ServerProcess:
        server = start_server(tmp_path, *store_flags, *flags)
        started.append(server)
        return server

    yield _launch
    for server in started:
        server.stop()


# -- 6: answers are bounded -------------------------------------------------------------------


def test_a_search_pages_by_answer_size_and_the_client_sees_every_promise(launch: Any) -> None:
    server = launch("--max-answer-size", str(MIB))
    ids = fill(server, unique("page"))
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        data: dict[str, Any] = {"tags": {"set": ids[0].rsplit("-", 1)[0]}, "limit": 1000}
        if cursor is not None:
            data["cursor"] = cursor
        answer = server.rpc("promise.search", data)
        assert answer.status == 200, answer
        pages += 1
        # Within the cap: one promise of slack for the record that always fits.
        assert len(msgspec.json.encode(answer.data)) <= MIB + PAYLOAD
        seen += [p["id"] for p in answer.data["promises"]]
        cursor = answer.data.get("cursor")
        if cursor is None:
            break
    assert seen == ids
    assert pages >= COUNT * PAYLOAD // MIB


def test_a_batch_of_large_searches_answers_about_the_cap_in_all(launch: Any) -> None:
    server = launch()
    tag = unique("batch")
    fill(server, tag)
    search = {"kind": "promise.search", "head": {}, "data": {"tags": {"set": tag}, "limit": 1000}}
    before = rss(server)
    # Unbounded, these ten searches answer 125 MiB (the probe's 1,000 built 23.8 GB).
    status, body = batch(server, [search] * 10)
    peak = rss(server, "VmHWM")
    assert status == 200
    assert len(body) <= DEFAULT_ANSWER + PAYLOAD + 64 * 1024
    answers = msgspec.json.decode(body)["data"]["responses"]
    statuses = [a["head"]["status"] for a in answers]
    for a in answers[3:]:
        assert a["data"] == "Batch answer too large — send this request again"
    # Searches take turns in request order: the first answers all 200 promises (12.5 MiB),
    # the second pages at the budget left, the third has less than a promise left and
    # answers one (a search with budget left always progresses), the rest do not run.
    assert statuses == [200, 200, 200] + [413] * 7
    pages = [a["data"] for a in answers[:3]]
    assert "cursor" not in pages[0]
    assert "cursor" in pages[1]
    assert 1 < len(pages[1]["promises"]) < COUNT
    assert len(pages[2]["promises"]) == 1
    assert "cursor" in pages[2]
    # The answer, its records and their encoding: well under the 125 MiB of one copy.
    assert peak - before < 96 * MIB, (before, peak)
    assert server.rpc("promise.get", {"id": f"{tag}-0000"}).status == 200


# -- 7: the cron cache keeps nothing large -----------------------------------------------------


def test_huge_cron_expressions_are_refused_before_parsing_and_leave_no_memory(
    launch: Any,
) -> None:
    server = launch()
    tags = {"resonate:target": "poll://any@nobody"}
    server.ok(  # warm the paths once, so the baseline includes them
        "schedule.create",
        {
            "id": unique("s"),
            "cron": "* * * * *",
            "promiseId": "x",
            "promiseTimeout": 1,
            "promiseTags": tags,
        },
    )
    before = rss(server)
    for i in range(20):
        # Valid for the parser (blanks separate fields), distinct text each time.
        cron = "0 0 * * *" + " " * (4 * MIB + i)
        id = unique("s")
        answer = server.rpc(
            "schedule.create",
            {"id": id, "cron": cron, "promiseId": "x", "promiseTimeout": 1, "promiseTags": tags},
        )
        assert (answer.status, answer.data) == (
            400,
            "Invalid cron expression — must be at most 1024 characters",
        )
        server.rpc("schedule.delete", {"id": id})
    after = rss(server)
    assert after - before < 32 * MIB, (before, after)


# -- 8: over-limit work is refused, the server keeps answering ----------------------------------


def test_over_limit_requests_are_400s_and_the_server_keeps_answering(launch: Any) -> None:
    server = launch()
    probe = unique("alive")
    server.ok("promise.create", {"id": probe, "timeoutAt": FAR})
    tags = {"resonate:target": "poll://any@nobody"}
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "task.heartbeat",
            {"pid": "w", "tasks": [{"id": f"t{i}", "version": 1} for i in range(200_000)]},
            "Invalid 'tasks' — at most 10000 allowed",
        ),
        (
            "schedule.create",
            {
                "id": unique("s"),
                "cron": "0 0 * * " + ",".join(["1"] * 300),
                "promiseId": "x",
                "promiseTimeout": 1,
                "promiseTags": tags,
            },
            "Invalid cron expression — must have at most 256 terms",
        ),
        (
            "promise.search",
            {"tags": {f"k{i}": "v" for i in range(100_000)}},
            "Invalid 'tags' — at most 64 allowed",
        ),
        (
            "schedule.search",
            {"tags": {f"k{i}": "v" for i in range(65)}},
            "Invalid 'tags' — at most 64 allowed",
        ),
        (
            "promise.create",
            {"id": unique("p"), "timeoutAt": FAR, "tags": {f"k{i}": "v" for i in range(65)}},
            "Invalid 'tags' — at most 64 allowed",
        ),
    ]
    for kind, data, message in cases:
        answer = server.rpc(kind, data)
        assert (answer.status, answer.data) == (400, message), kind
        assert server.rpc("promise.get", {"id": probe}).status == 200
    element = {"kind": "promise.get", "head": {}, "data": {"id": probe}}
    status, body = batch(server, [element] * 1001)
    assert status == 400
    assert msgspec.json.decode(body)["data"] == "Invalid batch: 1001 requests, at most 1000 allowed"
    assert server.rpc("promise.get", {"id": probe}).status == 200


def test_each_limit_is_configurable(launch: Any) -> None:
    server = launch(
        "--max-batch-requests",
        "2",
        "--max-heartbeat-tasks",
        "1",
        "--max-cron-length",
        "12",
        "--max-cron-terms",
        "5",
        "--max-tags",
        "1",
    )
    tags = {"resonate:target": "poll://any@nobody"}
    beat = {"pid": "w", "tasks": [{"id": "a", "version": 1}, {"id": "b", "version": 1}]}
    assert server.rpc("task.heartbeat", beat).data == "Invalid 'tasks' — at most 1 allowed"
    schedule = {"id": "s", "promiseId": "x", "promiseTimeout": 1, "promiseTags": tags}
    long = server.rpc("schedule.create", {**schedule, "cron": "0 0 * * *    "})
    assert long.data == "Invalid cron expression — must be at most 12 characters"
    terms = server.rpc("schedule.create", {**schedule, "cron": "0 0 * * 1,2"})
    assert terms.data == "Invalid cron expression — must have at most 5 terms"
    assert server.rpc("promise.search", {"tags": {"a": "1", "b": "2"}}).data == (
        "Invalid 'tags' — at most 1 allowed"
    )
    element = {"kind": "promise.search", "head": {}, "data": {}}
    status, body = batch(server, [element] * 3)
    assert status == 400
    assert msgspec.json.decode(body)["data"] == "Invalid batch: 3 requests, at most 2 allowed"
