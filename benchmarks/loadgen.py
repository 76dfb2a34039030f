"""The load generator: a separate process driving the server over keep-alive HTTP.

Run as ``python -m benchmarks.loadgen '<json spec>'``; prints one JSON object on stdout.

Modes:

* ``pairs``: ``clients`` coroutines, each on its own keep-alive connection, loop
  ``promise.create`` (unique id, far-future timeout, no target) then ``promise.settle``
  (resolved) until ``end_at``.  Only requests that complete inside the measuring window
  ``[start_at, end_at]`` (epoch seconds, chosen by the parent so that several generator
  processes share one window) count; the time before ``start_at`` is warm-up.
* ``create``: create ``count`` pending promises (ids ``<prefix>.<n>``) as fast as
  ``clients`` connections allow, then stop.

Every answer is checked (HTTP 200, envelope status 200, same id, expected state); a failed
check or a transport error is counted and the first one is reported, never hidden.  The
process also reports its own CPU time over the window: near 100 % of a core means the
generator, not the server, may be the bottleneck.

Clients: ``client = "raw"`` (default) = one benchmarks/rawhttp.py connection per client,
pre-built bodies, on uvloop: the cheapest way to keep 64 keep-alive requests in flight, so
that the generator leaves the CPUs to the server; ``client = "aiohttp"`` = one
``aiohttp.ClientSession`` with a connector limited to ``clients`` connections (for
comparison: ~0.3 ms of CPU per request here, as much as the server).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import uvloop

from benchmarks.rawhttp import Connection, HttpError
from benchmarks.rpc import FAR_FUTURE, BadAnswer, check, create_body, settle_body
from benchmarks.stats import percentile

_HEADERS = {"content-type": "application/json"}


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Tally:
    def __init__(self) -> None:
        self.ops = 0
        self.errors = 0
        self.first_error: str | None = None
        self.latencies: list[float] = []

    def fail(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = f"{type(exc).__name__}: {exc}"


Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]
_FAILURES = (TimeoutError, BadAnswer, HttpError, aiohttp.ClientError, OSError, ValueError)


async def _pairs_client(post: Post, spec: dict[str, Any], n: int, tally: Tally) -> None:
    start, end = spec["start_at"], spec["end_at"]
    prefix = f"{spec['prefix']}.{n}"
    seq = 0
    clock = time.time
    while clock() < end:
        seq += 1
        pid = f"{prefix}.{seq}"
        for body, state in (
            (create_body(pid, FAR_FUTURE), "pending"),
            (settle_body(pid), "resolved"),
        ):
            t0 = clock()
            try:
                check(*await post(body), pid, state)
            except _FAILURES as exc:
                tally.fail(exc)
                break
            t1 = clock()
            if start <= t1 <= end:
                tally.ops += 1
                tally.latencies.append(t1 - t0)


async def _create_client(post: Post, spec: dict[str, Any], ids: range, tally: Tally) -> None:
    prefix = spec["prefix"]
    for i in ids:
        pid = f"{prefix}.{i}"
        try:
            check(*await post(create_body(pid, FAR_FUTURE)), pid, "pending")
        except _FAILURES as exc:
            tally.fail(exc)
            continue
        tally.ops += 1


async def _drive(posts: list[Post], spec: dict[str, Any], tally: Tally) -> tuple[float, float]:
    """Run the mode's clients, one per ``post``; return (window seconds, CPU share)."""
    if spec["mode"] == "pairs":
        # Idle until shortly before the window so that every generator starts together.
        await asyncio.sleep(max(0.0, spec["warm_from"] - time.time()))
        mark: list[float] = []

        async def cpu_mark() -> None:
            await asyncio.sleep(max(0.0, spec["start_at"] - time.time()))
            mark.extend((_cpu(), time.time()))

        jobs = [_pairs_client(post, spec, n, tally) for n, post in enumerate(posts)]
        await asyncio.gather(cpu_mark(), *jobs)
        cpu_share = (_cpu() - mark[0]) / max(1e-9, time.time() - mark[1])
        return spec["end_at"] - spec["start_at"], cpu_share
    count = int(spec["count"])
    chunks = [range(n, count, len(posts)) for n in range(len(posts))]
    cpu0, t0 = _cpu(), time.time()
    await asyncio.gather(
        *(_create_client(p, spec, c, tally) for p, c in zip(posts, chunks, strict=True))
    )
    window = time.time() - t0
    return window, (_cpu() - cpu0) / window


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    clients = int(spec["clients"])
    tally = Tally()
    if spec.get("client", "raw") == "raw":
        url = urlsplit(spec["url"])
        host, port = url.hostname or "127.0.0.1", url.port or 80
        conns = [await Connection.open(host, port) for _ in range(clients)]
        try:
            window, cpu_share = await _drive([c.post for c in conns], spec, tally)
        finally:
            for conn in conns:
                conn.close()
    else:
        connector = aiohttp.TCPConnector(limit=clients, limit_per_host=clients)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def post(body: bytes) -> tuple[int, bytes]:
                async with session.post(spec["url"], data=body, headers=_HEADERS) as answer:
                    return answer.status, await answer.read()

            window, cpu_share = await _drive([post] * clients, spec, tally)
    lat = tally.latencies
    return {
        "ops": tally.ops,
        "seconds": window,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "lat_p50_ms": percentile(lat, 50) * 1000 if lat else None,
        "lat_p99_ms": percentile(lat, 99) * 1000 if lat else None,
        "cpu_share": cpu_share,
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result = runner.run(run(spec))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
