"""Request coalescing of ``RemoteNetwork`` (``sustain.batch``) against real ``sustain serve``.

* Workflows (a fan-out of remote children and many concurrent workflows) complete, and the
  server receives far fewer HTTP POSTs than operations: its metrics count ``sustain.batch``
  requests and each element by its kind.  A lone request is still a plain request.
* More requests than a batch holds are cut into several batches of one flush.
* The token travels in the batch's head; a batch refused as a whole (401) is sent again
  request by request.
* A server with ``protocol.batch = false`` (as a Resonate server) refuses the first batches
  with 400 "Unknown operation": the same workflows complete, batching is off for good
  afterwards and this is logged once.
* A sub-answer 503 (PostgreSQL's ``lock_timeout`` behind a table lock held by the test) is
  retried alone on the ladder, not the batch around it.
* Elements the server answers 413 (the batch's answer budget, ``limits.max_answer_size``,
  ran out before they ran) are sent again alone, and every caller gets its page.
* ``stop()`` while a batch is on the wire (the server is frozen with SIGSTOP) raises
  ``NetworkStopped`` in every waiting caller.

POSTs are counted by ``CountingNetwork``, a ``RemoteNetwork`` that counts what it sends; the
server's metrics confirm the batches and the operations independently.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from sustain import Context, Sustain
from sustain.sdk import batcher
from sustain.sdk.network import Answer, NetworkStopped
from sustain.sdk.remote import RemoteNetwork
from tests.sdk.network.conftest import DEADLINE, HOUR, now_ms, wait_until
from tests.servers import free_port, start_server, unique
from tests.store.postgres_db import temp_database

BATCH_PREFIX = b'{"kind":"sustain.batch"'
_METRIC = re.compile(r'^sustain_request_total\{kind="([^"]+)",status="(\d+)"\} ([0-9.e+]+)$')


class CountingNetwork(RemoteNetwork):
    """A ``RemoteNetwork`` that counts its POSTs and, among them, the batches."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.posts = 0
        self.batches = 0

    async def _post(self, body: bytes) -> tuple[int, bytes]:
        self.posts += 1
        self.batches += body.startswith(BATCH_PREFIX)
        return await super()._post(body)


class Metered:
    """A server with its metrics on a port of its own."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None) -> None:
        self.metrics_port = free_port()
        self.server = start_server(tmp, "--metrics-port", str(self.metrics_port), env=env)

    def counts(self) -> dict[tuple[str, int], int]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        found: dict[tuple[str, int], int] = {}
        for line in text.splitlines():
            match = _METRIC.match(line)
            if match:
                found[(match[1], int(match[2]))] = int(float(match[3]))
        return found

    def operations(self) -> int:
        """Requests of every kind but ``sustain.batch`` (each batch element counts)."""
        return sum(n for (kind, _), n in self.counts().items() if kind != batcher.BATCH)

    def batches(self, status: int) -> int:
        return self.counts().get((batcher.BATCH, status), 0)


@pytest.fixture
def metered(tmp_path: Path) -> Iterator[Metered]:
    server = Metered(tmp_path)
    yield server
    server.server.stop()


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Metered]:
    """A server that answers ``sustain.batch`` as a Resonate server does."""
    server = Metered(tmp_path, env={"SUSTAIN_PROTOCOL__BATCH": "false"})
    yield server
    server.server.stop()


# -- workflows ---------------------------------------------------------------------------------


def double(ctx: Context, i: int) -> int:
    return 2 * i


def fanout(ctx: Context, n: int) -> Generator[Any, Any, int]:
    """``n`` remote children started at once (their creates leave in one iteration)."""
    futures = []
    for i in range(n):
        futures.append((yield ctx.begin_rpc(double, i)))
    total = 0
    for future in futures:
        total += yield future
    return total


def three(ctx: Context, x: int) -> Generator[Any, Any, int]:
    for _ in range(3):
        x = yield ctx.run(double, x)
    return x


def app(net: RemoteNetwork) -> Sustain:
    sustain = Sustain(network=net, group=unique("g"))
    for fn in (double, fanout, three):
        sustain.register(fn)
    return sustain


def run_workflows(sustain: Sustain, children: int = 30, workflows: int = 30) -> None:
    """A fan-out of ``children`` and ``workflows`` concurrent workflows; results checked."""
    tag = unique("wf")
    fan = sustain.run(f"{tag}-fan", fanout, children)
    many = [sustain.run(f"{tag}-{i}", three, i) for i in range(workflows)]
    assert fan.result(timeout=DEADLINE) == children * (children - 1)
    assert [h.result(timeout=DEADLINE) for h in many] == [8 * i for i in range(workflows)]


def test_concurrent_requests_share_posts(metered: Metered) -> None:
    net = CountingNetwork(metered.server.url)
    with app(net) as sustain:
        run_workflows(sustain)
    operations = metered.operations()
    assert net.batches > 0
    assert metered.batches(200) == net.batches  # every batch was a valid one
    assert net.posts * 2 < operations, (net.posts, operations)


async def test_a_lone_request_is_a_plain_request(metered: Metered) -> None:
    net = CountingNetwork(metered.server.url)
    await net.start()
    try:
        for _ in range(3):
            pid = unique("lone")
            created = await net.request("promise.create", {"id": pid, "timeoutAt": now_ms() + HOUR})
            assert created.status == 200 and created.data["promise"]["id"] == pid
        assert (net.posts, net.batches) == (3, 0)
        assert metered.batches(200) == 0
    finally:
        await net.stop()


async def test_a_large_flush_is_cut_into_batches(metered: Metered) -> None:
    net = CountingNetwork(metered.server.url)
    await net.start()
    try:
        count = 2 * batcher.MAX_BATCH + 10
        tag = unique("many")
        answers = await asyncio.gather(
            *(
                net.request("promise.create", {"id": f"{tag}-{i}", "timeoutAt": now_ms() + HOUR})
                for i in range(count)
            )
        )
        assert [a.data["promise"]["id"] for a in answers] == [f"{tag}-{i}" for i in range(count)]
        assert {a.status for a in answers} == {200}
        assert (net.posts, net.batches) == (3, 3)
        assert metered.counts()[("promise.create", 200)] == count
    finally:
        await net.stop()


async def test_elements_past_the_answer_budget_are_sent_again_alone(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--max-answer-size", "65536")
    net = CountingNetwork(server.url)
    await net.start()
    try:
        tag = unique("big")
        for i in range(4):  # 4 promises of 20,000 characters: one search answers ~80 kB
            data = {"data": "A" * 20_000}
            server.ok(
                "promise.create",
                {
                    "id": f"{tag}-{i}",
                    "timeoutAt": now_ms() + HOUR,
                    "param": data,
                    "tags": {"t": tag},
                },
            )
        search = {"tags": {"t": tag}, "limit": 10}
        answers = await asyncio.gather(*(net.request("promise.search", search) for _ in range(4)))
        assert {a.status for a in answers} == {200}
        # In the batch, the first search pages within the budget (3 promises), the second
        # has less than a promise left and answers one (a search always progresses), the
        # last two do not run (413) and go again alone, each with a whole budget.
        pages = [[p["id"] for p in a.data["promises"]] for a in answers]
        three = [f"{tag}-{i}" for i in range(3)]
        assert pages == [three, three[:1], three, three]
        assert [a.data["cursor"] for a in answers] == [
            f"{tag}-2",
            f"{tag}-0",
            f"{tag}-2",
            f"{tag}-2",
        ]
        assert (net.posts, net.batches) == (3, 1)
    finally:
        await net.stop()
        server.stop()


async def test_the_token_covers_the_batch(tmp_path: Path) -> None:
    """The batch carries the token; a batch refused as a whole (401 without a token) is sent
    again request by request, and each request gets the answer it gets alone."""
    server = start_server(tmp_path, "--auth-publickey", "none")
    admin = unsigned(role="admin", exp=int(time.time()) + 600)
    authed, anonymous = CountingNetwork(server.url, token=admin), CountingNetwork(server.url)
    try:
        tag = unique("auth")
        data = [{"id": f"{tag}-{i}", "timeoutAt": now_ms() + HOUR} for i in range(3)]
        created = await asyncio.gather(*(authed.request("promise.create", d) for d in data))
        assert {a.status for a in created} == {200}
        assert (authed.posts, authed.batches) == (1, 1)
        got = await asyncio.gather(*(anonymous.request("promise.get", d) for d in data))
        assert got == [Answer(401, "Unauthorized")] * 3
        assert (anonymous.posts, anonymous.batches) == (4, 1)
    finally:
        await authed.stop()
        await anonymous.stop()
        server.stop()


# -- a server without sustain.batch -----------------------------------------------------------


def test_fallback_to_single_requests(strict: Metered, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sustain.sdk.batcher")
    net = CountingNetwork(strict.server.url)
    with app(net) as sustain:
        run_workflows(sustain)
        refused = strict.batches(400)
        assert refused == net.batches >= 1
        # Only the batches already on the wire when the first refusal came back were refused.
        assert refused <= batcher.MAX_FLUSHES
        posts = net.posts
        run_workflows(sustain)  # batching stays off: every request goes alone
        assert net.posts > posts
        assert (net.batches, strict.batches(400)) == (refused, refused)
    logged = [r for r in caplog.records if "does not know sustain.batch" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO


# -- retries, stop -----------------------------------------------------------------------------


async def test_a_sub_answer_503_is_retried_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL answers 503 once ``lock_timeout`` (10 s) runs out behind the test's table
    lock: every element of the batch gets its own 503, which its caller retries."""
    caplog.set_level(logging.WARNING)
    with temp_database() as url:
        server = start_server(tmp_path, "--postgres", url)
        # Longer than the server's lock_timeout: the batch's answer is awaited, not retried.
        net = CountingNetwork(server.url, timeout=40)
        await net.start()
        lock = await psycopg.AsyncConnection.connect(url)
        try:
            await lock.execute("LOCK TABLE promises IN ACCESS EXCLUSIVE MODE")
            tag = unique("locked")
            data = [{"id": f"{tag}-{i}", "timeoutAt": now_ms() + HOUR} for i in range(4)]
            pending = [asyncio.ensure_future(net.request("promise.create", d)) for d in data]
            await wait_until(lambda: retries(caplog, "promise.create") >= 4)
            await lock.rollback()  # the lock goes: the retries find the table free
            async with asyncio.timeout(DEADLINE):
                answers = await asyncio.gather(*pending)
            assert {a.status for a in answers} == {200}
            assert net.batches >= 1
            assert retries(caplog, batcher.BATCH) == 0  # the batch itself was answered
            creates = [r.getMessage() for r in caplog.records]
            assert all("503" in m for m in creates if m.startswith("promise.create"))
        finally:
            await lock.close()
            await net.stop()
            server.stop()


async def test_stop_while_a_batch_is_on_the_wire(metered: Metered) -> None:
    server = metered.server
    net = CountingNetwork(server.url, timeout=DEADLINE)
    await net.start()
    assert (await net.request("promise.get", {"id": "warm"})).status == 404  # a live connection
    server.proc.send_signal(signal.SIGSTOP)  # the server takes nothing from its socket now
    try:
        pending = [
            asyncio.ensure_future(net.request("promise.get", {"id": unique("frozen")}))
            for _ in range(3)
        ]
        await wait_until(lambda: net.batches == 1)  # posted: its answer cannot come
        assert not any(p.done() for p in pending)
        await net.stop()
        async with asyncio.timeout(DEADLINE):
            results = await asyncio.gather(*pending, return_exceptions=True)
        assert all(isinstance(r, NetworkStopped) for r in results), results
        with pytest.raises(NetworkStopped):
            await net.request("promise.get", {"id": "late"})
    finally:
        server.proc.send_signal(signal.SIGCONT)


# -- helpers -----------------------------------------------------------------------------------


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "", algorithm="none")


def retries(caplog: pytest.LogCaptureFixture, what: str) -> int:
    return sum(
        "retrying" in r.getMessage() and r.getMessage().startswith(what) for r in caplog.records
    )
