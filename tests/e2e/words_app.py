"""The app ``sustain worker`` serves in the CLI tests of issue 19 (test_cli_words.py).

It is built for embedded mode, on the file named by ``WORDS_DB``: the tests start it with
``-S <server>`` and check that it connects there and never opens that file.
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Never, Sustain

sustain = Sustain(store=os.environ.get("WORDS_DB", ":memory:"))


@sustain.register
def greet(ctx: Context, name: str, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@sustain.register(retry=Never())  # the test wants the rejection, not retries
def fail(ctx: Context, why: str) -> None:
    raise ValueError(why)


def add(ctx: Context, a: int, b: int) -> int:
    return a + b


@sustain.register
def approval(ctx: Context, who: str, group: str) -> Any:
    """Every kind of node ``sustain tree`` draws: run, rpc, detached, sleep, promise."""
    total = yield ctx.run(add, 1, 2)
    greeting = yield ctx.options(target=group).rpc("greet", who)
    yield ctx.options(target=group).detached("greet", "detached")
    yield ctx.sleep(0.05)
    decision = yield ctx.options(id=f"approve-{who}").promise()
    return {"who": who, "total": total, "greeting": greeting, "decision": decision}


@sustain.register
def chain(ctx: Context, prefix: str, n: int, group: str) -> Any:
    """n! with each level under the id ``{prefix}-{n}``, as the factorial example does."""
    if n <= 1:
        return 1
    below = yield ctx.options(target=group, id=f"{prefix}-{n - 1}").rpc(
        "chain", prefix, n - 1, group
    )
    return n * below
