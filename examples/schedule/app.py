"""A report function for a cron schedule, and the worker group that runs it.

``generate_report`` is a plain function: the whole call is one durable step.  The schedule
(create.py) lives on the server; at every tick the server creates a promise
``daily_report.<tick ms>`` with a task for the group ``reports``, and a worker runs it.

Environment: ``SUSTAIN_URL`` (default ``http://127.0.0.1:8001``), ``REPORT_TTL`` (the task
lease in seconds, 60), and two hooks for the crash test: ``REPORT_LOG`` (a file each run
appends ``pid promise-id`` to) and ``REPORT_BLOCK`` (seconds a run blocks first, 0).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from sustain import Context, Sustain

sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    group="reports",
    ttl=float(os.environ.get("REPORT_TTL", "60")),
)


@sustain.register
def generate_report(ctx: Context, user_id: int) -> str:
    if log := os.environ.get("REPORT_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {ctx.id}\n")
    time.sleep(float(os.environ.get("REPORT_BLOCK", "0")))
    report = f"Report for user {user_id} at {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"
    print(report, flush=True)
    return report
