"""``compute_something``: simulated work as a durable sleep, run by the group ``workers``.

Any member of the group may take a call; the server picks one per task.  The work is a
durable sleep, so a call whose worker dies is resumed by another member when the sleep's
timer fires: only the remaining time is waited.  The ``starting``/``computed`` notes are
checkpointed steps, printed once per call even though the body replays after the sleep.

Run it with ``sustain worker examples.load_balancing.worker:sustain`` (x3).  Environment:
``SUSTAIN_URL`` (default ``http://127.0.0.1:8001``) and ``LB_LOG``, a file each note is
appended to as ``pid id event unix-time`` (the test's shared sink).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sustain import Context, Sustain

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), group="workers")


def note(ctx: Context, id: str, event: str) -> None:
    print(f"[{os.getpid()}] {id} {event}", flush=True)
    if log := os.environ.get("LB_LOG"):
        with open(log, "a") as out:
            out.write(f"{os.getpid()} {id} {event} {time.time():.3f}\n")


@sustain.register
def compute_something(ctx: Context, id: str, compute_cost: float) -> Any:
    yield ctx.run(note, id, "starting")
    yield ctx.sleep(compute_cost)
    yield ctx.run(note, id, "computed")
    return f"{id} computed in {compute_cost} s"
