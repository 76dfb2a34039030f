"""The workflow the recovery benchmark kills and resumes (benchmarks/recovery.py).

Configured from the environment: ``REC_STORE`` (a SQLite file: embedded) or ``SUSTAIN_URL``
(a server), ``REC_GROUP``, ``REC_LOG`` (each step appends ``<n> <unix time>``; the module
appends ``ready <unix time>`` once imported, before the Sustain starts) and ``REC_HANG_AT``
(a step that hangs in this process, so the benchmark can SIGKILL it there).  The lease is
300 s: a recovery that waited for it would show.

``python -m benchmarks.recovery_app <id>`` runs the three-step workflow and waits for it;
``... get <id>`` only waits (the restarted process makes no call: the takeover resumes it);
``... rpc <id>`` sends it to ``REC_TARGET``; ``sustain worker benchmarks.recovery_app``
serves the group.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from sustain import Context, Sustain

STEPS = 3


def _note(text: str) -> None:
    with open(os.environ["REC_LOG"], "a") as log:
        log.write(f"{text} {time.time():.6f}\n")


sustain = Sustain(
    store=os.environ.get("REC_STORE"), group=os.environ.get("REC_GROUP", "rec"), ttl=300
)


def step(ctx: Context, n: int) -> int:
    _note(str(n))
    if os.environ.get("REC_HANG_AT") == str(n):
        time.sleep(3600)  # the benchmark kills this process here
    return n


@sustain.register
def steps(ctx: Context) -> Any:
    total = 0
    for n in range(1, STEPS + 1):
        total += yield ctx.run(step, n)
    return total


_note("ready")

if __name__ == "__main__":
    if sys.argv[1] == "get":
        handle = sustain.get(sys.argv[2])
    elif sys.argv[1] == "rpc":
        handle = sustain.options(target=os.environ["REC_TARGET"]).rpc(sys.argv[2], "steps")
    else:
        handle = sustain.run(sys.argv[1], steps)
    print(handle.result(timeout=600), flush=True)
    sustain.stop()
