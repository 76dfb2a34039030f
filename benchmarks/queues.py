"""Queues (issue 20, docs/queues.md): what a queue costs, and how soon a freed slot is reused.

Two measurements on one ``sustain serve`` (SQLite), in the same run:

* **W2 through a queue**: W2 (``count`` three-step workflows started at once, server mode:
  a ``sustain worker`` process and a caller, ``sdk_modes.ServerMode``) without a queue, then
  the same with every workflow on a queue whose ``concurrency`` (10,000) is far above the
  worker's capacity (64 tasks), so the queue never holds anything back and what is measured
  is its bookkeeping; workflows/s of both and their ratio (goal: at most 10 % slower).
* **Slot free -> next execute**: a queue with ``concurrency = 1`` and ``jobs`` tasks created
  at once; this process is the worker, on a raw SSE poll stream: for each execute it
  acquires the task and fulfills it, and the time from sending the fulfill (which frees the
  slot) to the next execute arriving on the stream is one sample; p50/p99 (goal: p99 <= 5 ms
  on SQLite).

Speed is never asserted here; the rows print beside the goals.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from typing import Any

import httpx

from benchmarks import workflows
from benchmarks.harness import Server
from benchmarks.sdk_modes import ServerMode
from benchmarks.stats import percentile

Row = dict[str, Any]
BIG = 10_000  # a limit far above what one worker takes at once
VERSION = "2026-04-01"


def _w2(mode: ServerMode, count: int, queue_name: str | None) -> Row:
    if queue_name is not None:
        base = mode.view
        mode.view = base.options(queue=queue_name)
        try:
            return workflows.w2(mode, count)
        finally:
            mode.view = base
    return workflows.w2(mode, count)


def w2_pair(count: int) -> Row:
    """W2 without and with a queue on one server, same worker, same run."""
    row: Row = {"workload": "queues", "case": f"W2 {count:,} workflows, no queue vs queue"}
    try:
        mode = ServerMode()
        with mode:
            assert mode.caller is not None
            mode.caller.queue("bench-w2", concurrency=BIG)
            plain = _w2(mode, count, None)
            queued = _w2(mode, count, "bench-w2")
            info = mode.caller.queues.get("bench-w2")
        row.update({
            "plain_wf_per_s": plain["workflows_per_s"],
            "queued_wf_per_s": queued["workflows_per_s"],
            "slowdown": plain["workflows_per_s"] / queued["workflows_per_s"] - 1,
            "queue_dispatched": info["dispatched"],
            "errors": plain["errors"] + queued["errors"] + int(info["dispatched"] < count),
        })  # fmt: skip
    except Exception as exc:
        row.update({"errors": 1, "error": repr(exc), "trace": traceback.format_exc(limit=3)})
    return row


def _rpc(client: httpx.Client, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    body = {"kind": kind, "head": {"corrId": "b", "version": VERSION}, "data": data}
    answer = client.post("/", json=body)
    envelope = answer.json()
    if envelope["head"]["status"] != 200:
        raise RuntimeError(f"{kind}: {envelope}")
    result: dict[str, Any] = envelope["data"]
    return result


def _listen(url: str, path: str, out: queue.Queue[tuple[float, dict[str, Any]]],
            ready: threading.Event, stop: threading.Event) -> None:  # fmt: skip
    with httpx.Client(base_url=url, timeout=None) as client, client.stream("GET", path) as r:
        ready.set()
        for line in r.iter_lines():
            if stop.is_set():
                return
            if line.startswith("data: "):
                out.put((time.perf_counter(), json.loads(line[6:])))


def slot_latency(jobs: int) -> Row:
    """Time from a fulfill that frees a queue's only slot to the next execute."""
    row: Row = {"workload": "queues", "case": f"slot free -> next execute, {jobs} jobs"}
    server = Server().start()
    stop = threading.Event()
    try:
        url = server.url.rstrip("/")
        got: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        ready = threading.Event()
        listener = threading.Thread(
            target=_listen, args=(url, "/poll/bench/p1", got, ready, stop), daemon=True
        )
        listener.start()
        ready.wait(10)
        with httpx.Client(base_url=url, timeout=30) as client:
            _rpc(client, "sustain.queue.create", {"name": "bench-slot", "concurrency": 1})
            far = int(time.time() * 1000) + 3_600_000
            tags = {"resonate:target": "poll://any@bench", "sustain:queue": "bench-slot"}
            for i in range(jobs):
                _rpc(client, "promise.create", {"id": f"slot-{i}", "timeoutAt": far, "tags": tags})
            samples: list[float] = []
            freed_at: float | None = None
            for _ in range(jobs):
                at, message = got.get(timeout=30)
                if freed_at is not None:
                    samples.append((at - freed_at) * 1000)
                task = message["data"]["task"]
                acquire = {"id": task["id"], "version": task["version"], "pid": "p1", "ttl": 60_000}
                version = _rpc(client, "task.acquire", acquire)["task"]["version"]
                action = {"kind": "promise.settle", "head": {},
                          "data": {"id": task["id"], "state": "resolved"}}  # fmt: skip
                fulfill = {"id": task["id"], "version": version, "action": action}
                freed_at = time.perf_counter()
                _rpc(client, "task.fulfill", fulfill)
        row.update({
            "samples": len(samples),
            "p50_ms": percentile(samples, 50),
            "p99_ms": percentile(samples, 99),
            "max_ms": max(samples, default=float("nan")),
            "errors": int(len(samples) != jobs - 1),
        })  # fmt: skip
    except Exception as exc:
        row.update({"errors": 1, "error": repr(exc), "trace": traceback.format_exc(limit=3)})
    finally:
        stop.set()
        server.cleanup()
    return row


def runs(quick: bool, repeat: int) -> list[Row]:
    out = []
    for _ in range(repeat):
        for row in (w2_pair(100 if quick else 1000), slot_latency(50 if quick else 500)):
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def queues_table(rows: list[Row]) -> str:
    from benchmarks.stats import cases, fmt, median_row, table  # noqa: PLC0415

    out = []
    for case, found in cases(rows):
        m = median_row(found)
        if "slowdown" in m:
            cells = [fmt(m["plain_wf_per_s"], 0), fmt(m["queued_wf_per_s"], 0),
                     f"{m['slowdown']:+.1%}", "", ""]  # fmt: skip
        else:
            cells = ["", "", "", fmt(m.get("p50_ms")), fmt(m.get("p99_ms"))]
        out.append([case, str(len(found)), *cells, fmt(sum(r["errors"] for r in found))])
    headers = ["Queues", "runs", "W2 wf/s", "W2 via queue wf/s", "slower by",
               "free->execute p50 ms", "p99 ms", "errors"]  # fmt: skip
    return table(headers, out) + (
        "\nGoals: W2 through a queue at most 10 % slower; slot free -> next execute p99 <= 5 ms."
    )
