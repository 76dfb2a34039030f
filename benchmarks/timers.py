"""Timer lateness: 1,000 promise timeouts due in the same second.

Setup: a fresh ``sustain serve`` on SQLite and, in this process, a tiny aiohttp receiver on
a free port.  ``n`` promises are created with ``resonate:target = poll://any@bench-nobody``
(a target makes the timeout an eager, server-driven one, PROTOCOL.md §3.2; nobody listens
on that group, so their execute messages are simply dropped) and a ``timeoutAt`` in one
whole second ``lead`` seconds ahead; each gets a listener
(``promise.register_listener``) with the receiver's address (see the transports below).

When the timer loop times a promise out, the settlement chain queues an ``unblock`` message
carrying the settled promise (``settledAt = timeoutAt``) and the outbox loop delivers it to
the receiver.  lateness = arrival time at the receiver − ``timeoutAt``: the whole path a
waiting client sees (timer wake-up, the timeout transaction and its fsync, outbox claim,
delivery).

Two layouts: ``spread`` = deadlines at ``base + i`` ms, 1,000 distinct deadlines across the
second (the timer loop must wake for each); ``burst`` = all at ``base`` (one big tick and a
burst of 1,000 messages).  Two listener transports: ``push`` = an ``http://`` address (the
server POSTs each unblock to the receiver, the issue's setting); ``sse`` = a
``poll://uni@bench/recv`` address with the receiver holding ``GET /poll/bench/recv`` open
(in-memory delivery: isolates the timer loop from the HTTP push client).  The server runs
with ``--http-poll-buffer-size`` above the burst so that the SSE queue never drops.

If creating the promises takes longer than the lead, the run is repeated with a doubled
lead (a run must start with every timer still in the future).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import resource
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from benchmarks.harness import Server, free_port
from benchmarks.rpc import (
    FAR_FUTURE,
    BadAnswer,
    check,
    create_body,
    listener_body,
    settle_body,
    unblock_decoder,
)
from benchmarks.stats import percentile

TARGET = "poll://any@bench-nobody"
SSE_ADDRESS = "poll://uni@bench/recv"
SSE_PATH = "poll/bench/recv"
_HEADERS = {"content-type": "application/json"}
# Seconds after the last deadline before an unblock counts as missing.  A missing unblock is
# infinitely late (it sets p99/max to inf), not a failed check: delivery is at most once.
GRACE = 5.0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Receiver:
    """Records the arrival time and the settled promise of every unblock message."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, str, int | None]] = {}
        self.bad = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.all_in = asyncio.Event()
        self.expected = 0

    def record(self, body: bytes, arrived: float) -> bool:
        try:
            message = unblock_decoder.decode(body)
        except ValueError:
            self.bad += 1
            return False
        promise = message.data.promise
        if message.kind == "unblock":
            self.arrivals[promise.id] = (arrived, promise.state, promise.settledAt)
            if len(self.arrivals) >= self.expected:
                self.all_in.set()
        return True

    async def handle(self, request: web.Request) -> web.Response:
        """The ``http://`` push endpoint."""
        arrived = time.time()
        try:
            body = await request.read()
        except ConnectionResetError:  # the server is shutting down mid-push
            return web.Response(status=503)
        return web.Response(status=200 if self.record(body, arrived) else 400)

    async def stream(self, session: aiohttp.ClientSession, url: str, ready: asyncio.Event) -> None:
        """Hold the SSE poll stream and record every ``data:`` event (PROTOCOL.md §1.6)."""
        no_timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with session.get(url, timeout=no_timeout) as answer:
            if answer.status != 200:
                raise BadAnswer(f"GET {url}: HTTP {answer.status}")
            ready.set()
            buffer = b""
            async for chunk in answer.content.iter_any():
                arrived = time.time()
                buffer += chunk
                *events, buffer = buffer.split(b"\n\n")
                for event in events:
                    for line in event.split(b"\n"):
                        if line.startswith(b"data:"):
                            self.record(line[5:].strip(), arrived)


async def _setup(
    session: aiohttp.ClientSession, url: str, ids: list[str], deadlines: list[int], address: str
) -> None:
    queue = list(zip(ids, deadlines, strict=True))

    async def worker() -> None:
        while queue:
            pid, deadline = queue.pop()
            body = create_body(pid, deadline, TARGET)
            async with session.post(url, data=body, headers=_HEADERS) as answer:
                check(answer.status, await answer.read(), pid, "pending")
            async with session.post(
                url, data=listener_body(pid, address), headers=_HEADERS
            ) as answer:
                check(answer.status, await answer.read(), pid, "pending")

    await asyncio.gather(*(worker() for _ in range(16)))


async def _warm_up(
    session: aiohttp.ClientSession, url: str, receiver: Receiver, address: str, tag: str
) -> None:
    """One settle -> unblock -> push round trip, so that the server's lazy imports and its
    first connection to the receiver are not charged to the first timer."""
    pid = f"warm-{tag}"
    async with session.post(url, data=create_body(pid, FAR_FUTURE, TARGET)) as answer:
        check(answer.status, await answer.read(), pid, "pending")
    async with session.post(url, data=listener_body(pid, address)) as answer:
        check(answer.status, await answer.read(), pid, "pending")
    async with session.post(url, data=settle_body(pid)) as answer:
        check(answer.status, await answer.read(), pid, "resolved")
    for _ in range(200):
        if pid in receiver.arrivals:
            return
        await asyncio.sleep(0.05)
    raise BadAnswer(f"warm-up unblock for {pid} never arrived")


StartServer = Callable[[tuple[str, ...]], Server]


def _fresh_server(extra: tuple[str, ...]) -> Server:
    return Server(extra=extra).start()


async def _run(
    n: int,
    layout: str,
    transport: str,
    lead: float,
    attempt: int,
    *,
    start_server: StartServer = _fresh_server,
) -> dict[str, Any]:
    receiver = Receiver()
    receiver.expected = n + 1  # + the warm-up message
    app = web.Application()
    app.router.add_post("/", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver.port).start()
    # Short shutdown grace: pushes still in flight at the end must not hold the next run.
    extra = ("--http-poll-buffer-size", str(4 * n), "--shutdown-timeout", "1000")
    server = start_server(extra)
    address = receiver.url if transport == "push" else SSE_ADDRESS
    tag = f"{layout}-{transport}-{attempt}"
    stream: asyncio.Task[None] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            if transport == "sse":
                ready = asyncio.Event()
                stream = asyncio.create_task(receiver.stream(session, server.url + SSE_PATH, ready))
                await asyncio.wait_for(ready.wait(), 10)
            await _warm_up(session, server.url, receiver, address, tag)
            started = time.time() * 1000
            base = math.ceil(started / 1000 + lead) * 1000
            deadlines = [base + (i * 1000 // n if layout == "spread" else 0) for i in range(n)]
            ids = [f"timer-{tag}-{i}" for i in range(n)]
            try:
                await _setup(session, server.url, ids, deadlines, address)
            except BadAnswer:
                if time.time() * 1000 < base:
                    raise
                # A timer fired while the setup was still creating: too short a lead.
            ready_at = time.time() * 1000
            if ready_at > base - 50:
                return {"overran": True, "setup_ms": ready_at - started}
            await asyncio.sleep(max(0.0, base / 1000 - time.time()))
            cpu0, t0 = _cpu(), time.time()
            wait = max(0.0, (base + 1000) / 1000 - time.time()) + GRACE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(receiver.all_in.wait(), wait)
            # This process only receives from here on: near 100 % would make the receiver,
            # not the server, the bottleneck.
            receiver_cpu = (_cpu() - cpu0) / max(1e-9, time.time() - t0)
            if stream is not None:
                stream.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await stream
    finally:
        server.cleanup()
        await runner.cleanup()
    lateness = []
    errors = receiver.bad
    missing = 0
    for pid, deadline in zip(ids, deadlines, strict=True):
        seen = receiver.arrivals.get(pid)
        if seen is None:
            missing += 1
            lateness.append(math.inf)
        elif seen[1] != "rejected_timedout" or seen[2] != deadline:
            errors += 1  # a wrong state or settledAt: a failed check
        else:
            lateness.append(seen[0] * 1000 - deadline)
    return {
        "workload": "timers",
        "case": f"{n} {layout} {transport}",
        "timers": n,
        "layout": layout,
        "transport": transport,
        "received": n - missing,
        "missing": missing,
        "errors": errors,
        "lead_s": lead,
        "setup_ms": ready_at - started,
        "receiver_cpu": receiver_cpu,
        "p50_ms": percentile(lateness, 50),
        "p99_ms": percentile(lateness, 99),
        "max_ms": max(lateness, default=math.nan),
        "min_ms": min(lateness, default=math.nan),
    }


def run_once(
    n: int, layout: str, transport: str, start_server: StartServer = _fresh_server
) -> dict[str, Any]:
    """One case; ``start_server(extra_flags)`` starts the server (default: a fresh one on an
    empty SQLite file; ``bigstore.py`` passes one on a copy of a pre-loaded file)."""
    lead = 3.0
    case = f"{n} {layout} {transport}"
    for attempt in range(4):
        try:
            row = asyncio.run(_run(n, layout, transport, lead, attempt, start_server=start_server))
        except (BadAnswer, aiohttp.ClientError, TimeoutError) as exc:
            return {"workload": "timers", "case": case, "errors": 1, "error": repr(exc)}
        if not row.get("overran"):
            return row
        lead *= 2
    return {"workload": "timers", "case": case, "errors": 1, "error": "setup overran"}


def runs(quick: bool, repeat: int) -> list[dict[str, Any]]:
    n = 200 if quick else 1000
    out = []
    for _ in range(repeat):
        for transport in ("push", "sse"):
            for layout in ("spread", "burst"):
                row = run_once(n, layout, transport)
                print(json.dumps(row), flush=True)
                out.append(row)
    return out
