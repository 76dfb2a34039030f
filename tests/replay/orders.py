"""An order workflow in successive deploys, for the replay and deploy-check tests.

``v1`` is the code that recorded the executions: charge, a durable sleep, ship.  Each leaf
appends its name to ``ORDERS_LOG`` (when set), so a test sees whether a replay ran one.
``compatible`` is a deploy that only changes a leaf's body and adds a step *after* the sleep
(executions waiting on it have not got there yet).  ``diverging`` inserts an audit step
*before* the sleep: an execution recorded by v1 has a sleep where it now calls ``audit``.
``patched`` charges a fee behind ``ctx.patched("fee")``, ``deprecated`` is that patch's
cleanup (``ctx.deprecate_patch``), ``unpatched`` charges the fee with no patch (the change
made without one, or the patch dropped too early: the same code).
``ORDERS_GROUP`` is the group of all the deploys (they are one app's successive versions),
``ORDERS_WAIT`` the sleep in seconds (an hour by default: executions stay pending).

``python -m tests.replay.orders <db> <id>...`` runs v1 embedded on the SQLite file ``db``
(how the golden histories were recorded, with ``sustain export --store``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from sustain import Context, Sustain

GROUP = os.environ.get("ORDERS_GROUP", "orders")
WAIT = float(os.environ.get("ORDERS_WAIT", "3600"))


def _log(name: str) -> None:
    path = os.environ.get("ORDERS_LOG")
    if path:
        with open(path, "a") as log:
            log.write(name + "\n")


def charge(ctx: Context, amount: int) -> dict[str, int]:
    _log("charge")
    return {"charged": amount}


def charge_with_fee(ctx: Context, amount: int) -> dict[str, int]:
    _log("charge")
    return {"charged": amount + 1}


def ship(ctx: Context, order: str) -> str:
    _log("ship")
    return f"shipped {order}"


def notify(ctx: Context, order: str) -> str:
    _log("notify")
    return f"notified {order}"


def audit(ctx: Context, amount: int) -> int:
    _log("audit")
    return amount


def order(ctx: Context, id: str, amount: int) -> Any:
    receipt = yield ctx.run(charge, amount)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    return [receipt["charged"], label]


def order_compatible(ctx: Context, id: str, amount: int) -> Any:
    receipt = yield ctx.run(charge_with_fee, amount)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    yield ctx.run(notify, id)
    return [receipt["charged"], label]


def order_diverging(ctx: Context, id: str, amount: int) -> Any:
    receipt = yield ctx.run(charge, amount)
    yield ctx.run(audit, amount)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    return [receipt["charged"], label]


def order_patched(ctx: Context, id: str, amount: int) -> Any:
    if (yield ctx.patched("fee")):  # the fee as a patch: executions past it keep theirs
        receipt = yield ctx.run(charge_with_fee, amount)
    else:
        receipt = yield ctx.run(charge, amount)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    return [receipt["charged"], label]


def order_deprecated(ctx: Context, id: str, amount: int) -> Any:
    ctx.deprecate_patch("fee")  # the patch's cleanup: the new branch only
    receipt = yield ctx.run(charge_with_fee, amount)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    return [receipt["charged"], label]


def order_unpatched(ctx: Context, id: str, amount: int) -> Any:
    receipt = yield ctx.run(charge_with_fee, amount)  # the fee with no patch (or dropped)
    yield ctx.sleep(WAIT)
    label = yield ctx.run(ship, id)
    return [receipt["charged"], label]


v1 = Sustain(group=GROUP)
v1.register(order, name="order")

compatible = Sustain(group=GROUP)
compatible.register(charge_with_fee, name="charge")  # the same step name, a new body
compatible.register(order_compatible, name="order")

diverging = Sustain(group=GROUP)
diverging.register(order_diverging, name="order")

gone = Sustain(group=GROUP)  # a deploy that dropped the workflow

patched = Sustain(group=GROUP)
patched.register(order_patched, name="order")

deprecated = Sustain(group=GROUP)
deprecated.register(order_deprecated, name="order")

unpatched = Sustain(group=GROUP)
unpatched.register(order_unpatched, name="order")


if __name__ == "__main__":
    app = Sustain(sys.argv[1], group=GROUP)
    app.register(order, name="order")
    for order_id in sys.argv[2:]:
        print(app.run(order_id, "order", order_id, 5).result(timeout=30))
    app.stop()
