"""A workflow that calls another over rpc, both left waiting, for the deploy check's view of
child executions (an rpc child is an execution of its own, pending with its parent).

``parent`` runs a step, then awaits ``child`` by rpc; ``child`` sleeps an hour.  ``v2``
changes only the child: a step before its sleep.  Leaves log to ``NESTED_LOG``.

``python -m tests.replay.nested <db> <id>`` starts ``parent`` embedded on the SQLite file
``db``, waits until the child sleeps, and stops (the executions stay pending in the file).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from sustain import Context, Sustain, SustainError

GROUP = os.environ.get("NESTED_GROUP", "nested")


def note(ctx: Context, n: int) -> int:
    path = os.environ.get("NESTED_LOG")
    if path:
        with open(path, "a") as log:
            log.write(f"note {n}\n")
    return n


def child(ctx: Context, n: int) -> Any:
    yield ctx.sleep(3600)
    return n


def child_v2(ctx: Context, n: int) -> Any:
    yield ctx.run(note, n)
    yield ctx.sleep(3600)
    return n


def parent(ctx: Context, id: str) -> Any:
    a = yield ctx.run(note, 1)
    b = yield ctx.rpc(child, 2)
    return a + b


v1 = Sustain(group=GROUP)
v1.register(parent, name="parent")
v1.register(child, name="child")

v2 = Sustain(group=GROUP)
v2.register(parent, name="parent")
v2.register(child_v2, name="child")


if __name__ == "__main__":
    app = Sustain(sys.argv[1], group=GROUP)
    app.register(parent, name="parent")
    app.register(child, name="child")
    app.run(sys.argv[2], "parent", sys.argv[2])
    deadline = time.monotonic() + 30
    while True:  # until the child's sleep (its first call) exists
        try:
            app.promises.get(f"{sys.argv[2]}:2.1")
            break
        except SustainError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    app.stop()
