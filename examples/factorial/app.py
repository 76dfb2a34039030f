"""Recursive durable factorial: every call is a durable promise whose id is its input.

``factorial(n)`` asks the worker group for ``factorial(n-1)`` under the id
``factorial-{n-1}``, so each result is content-addressed: computed once, then served from the
promise store to every later caller.  The call waits for the level below while holding its
task; any member of ``factorial-worker`` may run any level.

Environment: ``SUSTAIN_URL`` (default ``http://127.0.0.1:8001``), ``FACTORIAL_TTL`` (the
task lease in seconds, 10), and two hooks for the crash test: ``FACTORIAL_LOG`` (a file each
run of the body appends ``pid n`` to) and ``FACTORIAL_DELAY`` (seconds a level pauses before
recursing, 0).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sustain import Context, Sustain

GROUP = "factorial-worker"

sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    group=GROUP,
    ttl=float(os.environ.get("FACTORIAL_TTL", "10")),
)


def pause(ctx: Context, seconds: float) -> None:
    time.sleep(seconds)


@sustain.register
def factorial(ctx: Context, n: int) -> Any:
    print(f"[{os.getpid()}] computing factorial({n})", flush=True)
    if log := os.environ.get("FACTORIAL_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {n}\n")
    if n <= 1:
        return 1
    if delay := float(os.environ.get("FACTORIAL_DELAY", "0")):
        yield ctx.run(pause, delay)
    below = yield ctx.options(target=GROUP, id=f"factorial-{n - 1}").rpc("factorial", n - 1)
    return n * below
