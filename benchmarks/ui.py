"""UI: server time of the web UI's pages over 10,000 executions.

One run = a SQLite file filled in-process through the engine (the same ``promise.create`` /
``promise.settle`` operations the API runs) with ``count`` executions of three promises each
(a root with a target and an invocation ``param``, a ``ctx.run`` step, an rpc child; every
other execution settled), then a fresh ``sustain serve`` on that file.  Each page is fetched
``REQUESTS`` times after one warm-up, and the server time is read from the ``Server-Timing``
header the UI sends (query + HTML, without the network); the wall time of the request on
loopback is reported next to it.

Cases: the first page of the executions list (the issue's number: < 200 ms), the same page
filtered by state, by function, by id prefix, a function filter that matches nothing (the
worst case: the bounded scan reads its whole budget), and one execution's page.
"""

from __future__ import annotations

import base64
import json
import re
import statistics
import time
import urllib.request
from typing import Any

from benchmarks.harness import Server
from benchmarks.stats import percentile
from sustain.engine import Engine, EngineConfig
from sustain.store.sqlite import SqliteStore
from sustain.store.tx import Tx

REQUESTS = 30
BATCH = 500
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def _b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def populate(path: str, count: int) -> int:
    """``count`` executions of three promises each; answers the number of promises."""
    store = SqliteStore(path, synchronous="NORMAL")
    engine = Engine(EngineConfig())
    now = int(time.time() * 1000)
    far = now + 30 * 86_400_000
    created = 0
    try:
        for start in range(0, count, BATCH):

            def op(tx: Tx, start: int = start) -> int:
                n = 0
                for i in range(start, min(start + BATCH, count)):
                    root = f"order-{i:05d}"
                    func = "checkout" if i % 3 else "refund"
                    ops: list[tuple[str, dict[str, Any]]] = [
                        ("promise.create", {
                            "id": root, "timeoutAt": far,
                            "param": {"data": _b64({"func": func, "args": [i], "kwargs": {},
                                                    "version": 1})},
                            "tags": {"resonate:origin": root, "resonate:branch": root,
                                     "resonate:parent": root, "resonate:scope": "global",
                                     "resonate:target": "poll://any@bench"},
                        }),
                        ("promise.create", {
                            "id": f"{root}:1", "timeoutAt": far,
                            "param": {"data": _b64({"func": "charge", "version": 1})},
                            "tags": {"resonate:origin": root, "resonate:branch": root,
                                     "resonate:parent": root, "resonate:scope": "local"},
                        }),
                        ("promise.settle", {"id": f"{root}:1", "state": "resolved",
                                            "value": {"data": _b64(f"receipt-{i}")}}),
                        ("promise.create", {
                            "id": f"{root}:2", "timeoutAt": far,
                            "param": {"data": _b64({"func": "ship", "args": [i], "kwargs": {},
                                                    "version": 1})},
                            "tags": {"resonate:origin": root, "resonate:branch": f"{root}:2",
                                     "resonate:parent": root, "resonate:scope": "global"},
                        }),
                    ]  # fmt: skip
                    if i % 2:
                        ops.append(("promise.settle", {"id": root, "state": "resolved",
                                                       "value": {"data": _b64(i)}}))  # fmt: skip
                    for kind, data in ops:
                        outcome = engine.apply(tx, kind, data, now, "bench")
                        if outcome.status not in (200, 201):
                            raise RuntimeError(f"{kind} {data['id']}: {outcome.status}")
                    n += 3
                return n

            created += store.run(op)
    finally:
        store.close()
    return created


def _fetch(url: str) -> tuple[float, float, int]:
    """(server ms, wall ms, body bytes) of one GET."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as answer:
        body = answer.read()
        timing = answer.headers.get("server-timing", "")
        status = int(answer.status)
    wall = (time.perf_counter() - started) * 1000
    match = _TIMING.search(timing)
    if status != 200 or match is None:
        raise RuntimeError(f"{url}: {status} {timing!r}")
    return float(match.group(1)), wall, len(body)


CASES = (
    ("executions, first page", "ui/executions"),
    ("state=resolved", "ui/executions?state=resolved"),
    ("func=refund", "ui/executions?func=refund"),
    ("prefix=order-05", "ui/executions?prefix=order-05"),
    ("func matching nothing", "ui/executions?func=nothing"),
    ("one execution", "ui/execution?id=order-04242"),
)


def run_once(count: int) -> list[dict[str, Any]]:
    server = Server()
    rows = []
    try:
        promises = populate(str(server.db), count)
        server.start()
        for case, path in CASES:
            url = server.url + path
            _fetch(url)  # warm-up: the first request imports the UI
            samples = [_fetch(url) for _ in range(REQUESTS)]
            server_ms = [s[0] for s in samples]
            rows.append({
                "workload": "ui", "case": case, "executions": count, "promises": promises,
                "requests": REQUESTS,
                "server_ms_median": statistics.median(server_ms),
                "server_ms_p90": percentile(server_ms, 90),
                "wall_ms_median": statistics.median(s[1] for s in samples),
                "kb": samples[-1][2] / 1024, "errors": 0,
            })  # fmt: skip
    finally:
        server.cleanup()
    return rows


def runs(quick: bool, repeat: int) -> list[dict[str, Any]]:
    count = 1_000 if quick else 10_000
    out = []
    for _ in range(repeat):
        for row in run_once(count):
            print(json.dumps(row), flush=True)
            out.append(row)
    return out
