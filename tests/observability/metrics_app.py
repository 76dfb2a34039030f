"""The worker app of test_worker_metrics.py (``sustain worker tests.observability.metrics_app``).

``Sustain()`` reads ``SUSTAIN_URL``, so the worker is remote.  ``work`` runs ``n`` steps; the
first attempt of each ``shaky`` step raises (one retry each); ``gate`` holds its task until
the file it names exists, so the test can scrape while a task is running."""

from __future__ import annotations

import os
import time
from typing import Any

from sustain import Constant, Context, Sustain

sustain = Sustain()
_attempts: dict[str, int] = {}


def shaky(ctx: Context, key: str) -> str:
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise RuntimeError(f"first attempt of {key} fails")
    return key


def gate(ctx: Context, path: str) -> bool:
    while not os.path.exists(path):
        time.sleep(0.05)
    return True


@sustain.register
def work(ctx: Context, n: int, path: str) -> Any:
    done = []
    for i in range(n):
        done.append((yield ctx.options(retry=Constant(delay=0.01)).run(shaky, f"{ctx.id}-{i}")))
    yield ctx.run(gate, path)
    return done
