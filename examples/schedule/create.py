"""Create the ``daily_report`` schedule once: ``python -m examples.schedule.create``.

Running it again is fine.  Creating a schedule is idempotent per id: Sustain (protocol
2026-04-01) answers with the schedule already there, unchanged; older Resonate servers answer
409 "already exists", which counts as success too.  ``REPORT_CRON`` overrides the cron
expression (default every minute; a 6-field cron has a leading seconds field).
"""

from __future__ import annotations

import os

from examples.schedule.app import generate_report, sustain

from sustain import ServerError

CRON = os.environ.get("REPORT_CRON", "* * * * *")

if __name__ == "__main__":
    try:
        made = sustain.schedule("daily_report", CRON, generate_report, user_id=123)
        print(f"schedule daily_report: cron {made['cron']!r}, created at {made['createdAt']}")
    except ServerError as exc:
        if exc.status != 409:
            raise
        print("schedule daily_report already exists")
    sustain.stop()
