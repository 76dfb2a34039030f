"""The cluster workload's functions, run by ``sustain worker tests.cluster.app:sustain``.

``workflow(n)``: a step, an rpc to the group ``callees`` (``callee(n)``: one step, returns
``2n``), a durable sleep, a last step; returns ``2n + 1``.  ``tick()``: what the
seconds-resolution schedule runs, one step.  Every step appends ``<key> <pid>`` to the file
``APP_EFFECTS``, so the test counts how often each ran.

Environment: ``SUSTAIN_URL`` (the replica this process talks to), ``APP_GROUP`` (its
group), ``APP_EFFECTS``, ``APP_TTL`` (the task lease, seconds).
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Sustain

sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    group=os.environ.get("APP_GROUP", "callers"),
    ttl=float(os.environ.get("APP_TTL", "60")),
)


def effect(ctx: Context, key: str) -> str:
    with open(os.environ["APP_EFFECTS"], "a") as out:
        out.write(f"{key} {os.getpid()}\n")
    return key


@sustain.register
def workflow(ctx: Context, n: int) -> Any:
    yield ctx.run(effect, f"wf{n}.start")
    doubled = yield ctx.options(target="callees").rpc("callee", n)
    yield ctx.sleep(0.3)
    yield ctx.run(effect, f"wf{n}.end")
    return doubled + 1


@sustain.register
def callee(ctx: Context, n: int) -> Any:
    yield ctx.run(effect, f"callee{n}")
    return n * 2


@sustain.register
def tick(ctx: Context) -> Any:
    yield ctx.run(effect, f"tick {ctx.id}")
    return ctx.id
