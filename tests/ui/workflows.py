"""The workflows the UI tests run against a real server: a fan-out, a sleeper, a failure and
a human in the loop (an external promise the test resolves from the browser)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sustain import Context, Sustain


def square(ctx: Context, x: int) -> int:
    return x * x


def fanout(ctx: Context, n: int) -> Any:
    futures = []
    for i in range(n):
        futures.append((yield ctx.begin_rpc("square", i)))
    total = 0
    for future in futures:
        total += yield future
    return total


def note(ctx: Context, text: str) -> str:
    return text.upper()


def sleeper(ctx: Context) -> Any:
    yield ctx.run(note, "before the nap")
    yield ctx.sleep(timedelta(hours=1))  # still sleeping when the test looks
    return "rested"


def failing(ctx: Context, card: str) -> Any:
    yield ctx.run(note, card)
    raise ValueError(f"card {card} declined")


def approval(ctx: Context, order: str) -> Any:
    decision = yield ctx.promise()
    return {"order": order, "decision": decision}


def register(sustain: Sustain) -> None:
    for fn in (square, fanout, sleeper, failing, approval):
        sustain.register(fn)
