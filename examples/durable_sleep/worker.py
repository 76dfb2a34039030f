"""A workflow that sleeps durably, and the worker group ``workers`` that runs it.

``ctx.sleep(secs)`` is a timer promise the server resolves at an absolute time: while it runs
the workflow's task is suspended and no worker holds anything.  When it fires, the server
hands the task to any member of the group, which replays the workflow past the sleep.  A
worker killed mid-sleep therefore costs nothing: only the remaining time is waited.

Run it with ``sustain worker examples.durable_sleep.worker:sustain``.  Environment:
``SUSTAIN_URL`` (default ``http://127.0.0.1:8001``) and ``SLEEP_LOG``, a file each run of the
body appends ``pid promise-id`` to (the test's counter; the body runs again on replay).
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Sustain

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), group="workers")


@sustain.register
def sleeping_workflow(ctx: Context, secs: float) -> Any:
    print(f"[{os.getpid()}] {ctx.id}: sleeping for {secs} seconds", flush=True)
    if log := os.environ.get("SLEEP_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {ctx.id}\n")
    yield ctx.sleep(secs)
    return f"Slept for {secs} seconds"
