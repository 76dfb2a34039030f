"""The app the status tests (test_cli_status.py) run in real ``sustain worker`` processes.

``STATUS_CODE`` picks the code this worker runs: ``v1`` (the default) or ``changed``, a
deploy whose ``order`` calls ``refund`` where the recorded history has ``charge``.
``STATUS_ON_MISMATCH`` is ``Sustain(on_code_mismatch=...)`` (``pause`` by default).
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Exponential, Sustain

CHANGED = os.environ.get("STATUS_CODE") == "changed"
sustain = Sustain(on_code_mismatch=os.environ.get("STATUS_ON_MISMATCH", "pause"))  # type: ignore[arg-type]


SLOW = Exponential(delay=1.0, max_delay=2.0, max_retries=None)  # until canceled


def pay(ctx: Context, card: str) -> str:
    raise ConnectionError(f"the card service is down for {card}")


@sustain.register
def checkout(ctx: Context, card: str) -> Any:
    return (
        yield ctx.options(retry=Exponential(delay=1.0, max_delay=2.0, max_retries=None)).run(
            pay, card
        )
    )


def charge(ctx: Context, amount: int) -> str:
    return f"charged {amount}"


def refund(ctx: Context, amount: int) -> str:
    return f"refunded {amount}"


@sustain.register
def order(ctx: Context, amount: int) -> Any:
    receipt = yield ctx.run(refund if CHANGED else charge, amount)
    approval = yield ctx.promise()
    return [receipt, approval]
