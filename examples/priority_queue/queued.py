"""The priority queue again, with a Sustain queue instead of hand-made bounded fan-out.

``main.py`` walks the tiers two jobs at a time inside the workflow.  Here the workflow just
sends every job to the group's workers with ``ctx.options(queue=..., key=tier,
priority=weight).begin_rpc(...)`` and waits for them all; the queue ``jobs`` (two at a time,
created at start with ``sustain.queue``) decides what runs: the best priority first, first
come first served within a tier, and no more than two at once across every worker.  Jobs
that find a free slot when they are submitted start at once; the others wait in priority
order.

Embedded by default (``Sustain()``: engine and SQLite ``./sustain.db`` in this process); with
``SUSTAIN_URL`` set it runs against a server, and ``sustain worker
examples.priority_queue.queued:sustain --group queue`` finishes what a killed run left.

    python examples/priority_queue/queued.py [--id ID]

Environment as main.py's: ``QUEUE_SCALE``, ``QUEUE_TTL``, ``QUEUE_LOG``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from sustain import Context, Sustain

QUEUE = "jobs"
MAX_CONCURRENT = 2
WEIGHT = {"critical": 0, "high": 1, "normal": 2, "low": 3}
JOBS = [  # submitted out of order
    {"id": "job-001", "priority": "low", "description": "rebuild search index", "workMs": 200},
    {"id": "job-002", "priority": "normal", "description": "send digest emails", "workMs": 150},
    {"id": "job-003", "priority": "critical", "description": "payment webhook", "workMs": 100},
    {"id": "job-004", "priority": "low", "description": "archive old logs", "workMs": 180},
    {"id": "job-005", "priority": "high", "description": "fraud check", "workMs": 120},
    {"id": "job-006", "priority": "normal", "description": "resize images", "workMs": 160},
    {"id": "job-007", "priority": "critical", "description": "refund request", "workMs": 80},
    {"id": "job-008", "priority": "high", "description": "order confirmation", "workMs": 130},
]

sustain = Sustain(group="queue", ttl=float(os.environ.get("QUEUE_TTL", "60")))


def trace(event: str, job: dict[str, Any]) -> None:
    if log := os.environ.get("QUEUE_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {event} {job['id']} {time.time():.6f}\n")


@sustain.register
def run_job(ctx: Context, job: dict[str, Any]) -> Any:
    trace("start", job)
    start = time.time()
    print(f"{job['id']} ({job['priority']}) {job['description']}", flush=True)
    time.sleep(job["workMs"] * float(os.environ.get("QUEUE_SCALE", "1")) / 1000)
    trace("end", job)
    return {"id": job["id"], "start": start, "end": time.time()}


@sustain.register
def process_queue(ctx: Context, jobs: list[dict[str, Any]]) -> Any:
    futures = []
    for job in jobs:  # in submission order: the queue orders them
        tier = job["priority"]
        on_queue = ctx.options(queue=QUEUE, key=tier, priority=WEIGHT[tier])
        futures.append((yield on_queue.begin_rpc(run_job, job)))
    done = []
    for future in futures:
        done.append((yield future))
    done.sort(key=lambda d: d["start"])
    return {"total": len(jobs), "completed": len(done), "order": [d["id"] for d in done],
            "jobs": done}  # fmt: skip


def main() -> None:
    sustain.queue(QUEUE, concurrency=MAX_CONCURRENT)
    id = sys.argv[sys.argv.index("--id") + 1] if "--id" in sys.argv else f"queued/{time.time_ns()}"
    result = sustain.run(id, process_queue, JOBS).result()
    print(f"{result['completed']}/{result['total']} jobs, started in order: "
          f"{' '.join(result['order'])}")  # fmt: skip
    print("result:", json.dumps(result), flush=True)
    sustain.stop()


if __name__ == "__main__":
    main()
