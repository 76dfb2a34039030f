"""A multi-step workflow for the crash tests, configured from the environment.

``CRASH_STORE`` (a SQLite file: embedded) or ``SUSTAIN_URL`` (remote) picks the mode,
``CRASH_GROUP`` the group, ``CRASH_LOG`` the file each step appends its number to, and
``CRASH_HANG_AT`` a step that, in this process, logs itself and then hangs, so the test can
SIGKILL the process knowing every earlier step is settled.  ``CRASH_SLOW_AT`` names a step
that sleeps ``CRASH_SLOW_SECONDS`` (a step still running when a drain begins), ``CRASH_TTL``
the lease in seconds (2 by default; 300 where a pass must prove the lease was not awaited)
and ``CRASH_TARGET`` the group an ``rpc`` sends the workflow to.

``python -m tests.sdk.crash_app <id> <steps>`` runs (or re-attaches to) the workflow ``id``
and prints its result, ``... rpc <id> <steps>`` sends it to
``CRASH_TARGET``'s workers, ``... get <id>`` waits for it and prints it; ``sustain worker
tests.sdk.crash_app:sustain`` serves the group.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from sustain import Context, Sustain

store = os.environ.get("CRASH_STORE")
sustain = Sustain(
    store=store,
    group=os.environ.get("CRASH_GROUP", "crash"),
    ttl=float(os.environ.get("CRASH_TTL", "2")),
)


def step(ctx: Context, n: int) -> int:
    with open(os.environ["CRASH_LOG"], "a") as log:
        log.write(f"{n}\n")
    if os.environ.get("CRASH_HANG_AT") == str(n):
        time.sleep(3600)  # the test kills this process here
    if os.environ.get("CRASH_SLOW_AT") == str(n):
        time.sleep(float(os.environ["CRASH_SLOW_SECONDS"]))
        with open(os.environ["CRASH_LOG"] + ".done", "a") as done:
            done.write(f"{n}\n")
    return n


@sustain.register
def steps(ctx: Context, count: int) -> Any:
    total = 0
    for n in range(1, count + 1):
        total += yield ctx.run(step, n)
    return total


if __name__ == "__main__":
    if sys.argv[1] == "get":
        handle = sustain.get(sys.argv[2])
    elif sys.argv[1] == "rpc":
        target = sustain.options(target=os.environ["CRASH_TARGET"])
        handle = target.rpc(sys.argv[2], "steps", int(sys.argv[3]))
    else:
        handle = sustain.run(sys.argv[1], steps, int(sys.argv[2]))
    print(handle.result(timeout=100), flush=True)
    sustain.stop()
