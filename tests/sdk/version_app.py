"""A worker serving some versions of ``job``, for tests/sdk/test_version_routing.py.

``VERSIONS=1,2`` registers ``job`` at each listed version; each version's body sleeps
durably (so every execution is delivered twice: its start and its wake-up) and answers
``v<N>:<pid>``.  ``sustain worker tests.sdk.version_app:sustain`` serves ``VERSION_GROUP``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from sustain import Context, Sustain

sustain = Sustain(group=os.environ.get("VERSION_GROUP", "versions"), ttl=2)


def stamp(ctx: Context, version: int) -> str:
    return f"v{version}:{os.getpid()}"


def job_of(version: int) -> Callable[..., Any]:
    def job(ctx: Context, pause: float) -> Any:
        yield ctx.sleep(pause)
        return (yield ctx.run(stamp, version))

    return job


for v in os.environ.get("VERSIONS", "1").split(","):
    sustain.register(job_of(int(v)), name="job", version=int(v))
