"""A priority queue with at most two jobs running at once per tier, as one durable workflow.

There is no queue data structure: ``process_queue`` sorts the jobs into tiers and walks them
in order, two at a time, with ``ctx.begin_run`` (start both) and ``yield`` (wait for both).
Every job is a checkpointed step: after a crash, a replay skips the jobs already done.

Embedded by default (``Sustain()``: engine and SQLite ``./sustain.db`` in this process); with
``SUSTAIN_URL`` set the same code runs against a server, and ``sustain worker
examples.priority_queue.main:sustain --group queue`` resumes what a killed run left.

    python examples/priority_queue/main.py [--crash] [--id ID]

``--crash`` makes job-006 fail its first attempt (the default retry policy retries it).
Environment: ``QUEUE_SCALE`` multiplies every job's duration (1), ``QUEUE_TTL`` is the task
lease in seconds (60), ``QUEUE_LOG`` a file each job appends ``pid start|end id attempt``
to (a side-effect counter that outlives the process).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from sustain import Context, Sustain

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


def trace(event: str, job: dict[str, Any], attempt: int) -> None:
    if log := os.environ.get("QUEUE_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {event} {job['id']} {attempt}\n")


def execute_job(ctx: Context, job: dict[str, Any], position: int, crash_job: str | None) -> Any:
    attempt = ctx.info.attempt
    trace("start", job, attempt)
    start = time.time()
    print(f"[{position}] {job['id']} ({job['priority']}) {job['description']}", flush=True)
    time.sleep(job["workMs"] * float(os.environ.get("QUEUE_SCALE", "1")) / 1000)
    if job["id"] == crash_job and attempt == 1:
        raise RuntimeError(f"{job['id']} crashed on attempt {attempt}")
    trace("end", job, attempt)
    return {"id": job["id"], "position": position, "attempt": attempt,
            "start": start, "end": time.time()}  # fmt: skip


@sustain.register
def process_queue(ctx: Context, jobs: list[dict[str, Any]], crash_job: str | None = None) -> Any:
    ordered = sorted(jobs, key=lambda job: WEIGHT[job["priority"]])  # stable: submission order
    tiers = [[j for j in ordered if j["priority"] == p] for p in WEIGHT]
    done, position = [], 0
    for tier in tiers:
        for i in range(0, len(tier), MAX_CONCURRENT):
            running = []
            for job in tier[i : i + MAX_CONCURRENT]:
                position += 1
                running.append((yield ctx.begin_run(execute_job, job, position, crash_job)))
            for future in running:
                done.append((yield future))
    return {"total": len(jobs), "completed": len(done), "order": [d["id"] for d in done],
            "jobs": done}  # fmt: skip


if __name__ == "__main__":
    crash = "job-006" if "--crash" in sys.argv else None
    id = sys.argv[sys.argv.index("--id") + 1] if "--id" in sys.argv else f"queue/{time.time_ns()}"
    result = sustain.run(id, process_queue, JOBS, crash).result()
    print(f"{result['completed']}/{result['total']} jobs: {' '.join(result['order'])}")
    print("result:", json.dumps(result), flush=True)
    sustain.stop()
