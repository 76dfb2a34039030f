"""A workflow in two deploys, for tests/sdk/test_patch_deploy.py.

``PATCH_CODE=1`` is the first deploy: a fraud check, a durable sleep, a finish.
``PATCH_CODE=2`` is the second: the new fraud check behind ``ctx.patched``.  Each check
appends ``<code>:<check>`` to ``PATCH_LOG`` so the test sees which process ran which branch.
``sustain worker tests.sdk.patch_app:sustain`` serves ``PATCH_GROUP``.
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Sustain

CODE = int(os.environ.get("PATCH_CODE", "1"))
sustain = Sustain(group=os.environ.get("PATCH_GROUP", "patch"), ttl=2)


def _log(what: str) -> None:
    with open(os.environ["PATCH_LOG"], "a") as log:
        log.write(f"deploy{CODE}:{what}\n")


def check_v1(ctx: Context, n: int) -> str:
    _log("check_v1")
    return f"v1:{n}"


def check_v2(ctx: Context, n: int) -> str:
    _log("check_v2")
    return f"v2:{n}"


def finish(ctx: Context, checked: str) -> str:
    _log("finish")
    return f"{checked}:done"


@sustain.register
def order(ctx: Context, n: int, pause: float) -> Any:
    if CODE >= 2 and (yield ctx.patched("new-fraud-check")):
        checked = yield ctx.run(check_v2, n)
    else:
        checked = yield ctx.run(check_v1, n)
    yield ctx.sleep(pause)
    return (yield ctx.run(finish, checked))
