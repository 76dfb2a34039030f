"""The app of the CLI tour (docs/cli-tour.md, recorded by docs/make_cli_tour.py).

``Sustain()`` alone is embedded; the tour starts it with ``sustain -S URL worker``, which
points it at the server instead.
"""

from __future__ import annotations

from typing import Any

from sustain import Context, Sustain

sustain = Sustain()


def charge(ctx: Context, order: str, amount: int) -> str:
    return f"receipt-{order}-{amount}"


@sustain.register
def checkout(ctx: Context, order: str, amount: int = 42) -> Any:
    receipt = yield ctx.run(charge, order, amount)
    approved = yield ctx.options(id=f"approve-{order}").promise()  # a human settles it
    yield ctx.sleep(0.1)
    return {"order": order, "receipt": receipt, "approved": approved}


@sustain.register
def factorial(ctx: Context, n: int) -> Any:
    if n <= 1:
        return 1
    below = yield ctx.options(target="workers", id=f"factorial-{n - 1}").rpc("factorial", n - 1)
    return n * below


@sustain.register
def remind(ctx: Context, team: str) -> str:
    return f"reminded {team}"
