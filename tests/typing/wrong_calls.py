"""Calls a type checker must refuse: each line marked ``# E: <codes>`` must get exactly those
mypy errors, and no other line any (``test_typing.py``).  Never run, never in ``make types``.

A wrong call of an overloaded method (``run``, ``rpc``, ``ctx.run``, ...) is reported by
mypy as ``call-overload`` ("No overload variant of "run" of "Sustain" matches argument types
...", listing the function's own signature); a wrong use of a result is the usual error."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sustain import Context, DurableFuture, Sustain

sustain = Sustain(store=":memory:")


@sustain.register
def double(ctx: Context, x: int) -> int:
    return 2 * x


@sustain.register(retry=None)
async def greet(ctx: Context, name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


@sustain.register
def count(ctx: Context, words: list[str]) -> Generator[DurableFuture[Any], Any, int]:
    n: int = yield ctx.run(double, len(words))
    return n


def no_context(x: int) -> int:
    return x


def calls() -> None:
    sustain.run("a", double, "one")  # E: call-overload
    sustain.run("b", double)  # E: call-overload
    sustain.run("c", double, 1, 2)  # E: call-overload
    sustain.run("d", greet, "ann", punct="?")  # E: call-arg, arg-type
    sustain.rpc("e", count, "not a list")  # E: call-overload
    sustain.run("f", no_context, 1)  # E: call-overload
    sustain.options(timeout=5).run("g", double, "one")  # E: call-overload
    sustain.schedule("h", "* * * * *", double, "one")  # E: call-overload


def results() -> None:
    text: str = sustain.run("a", double, 1).result()  # E: assignment
    words: list[str] = sustain.run("b", count, ["x"]).result()  # E: assignment
    sustain.run("c", greet, "ann").result().append("!")  # E: attr-defined
    untyped: str = sustain.run("d", "double", 1).result()  # by name: Any, accepted
    del text, words, untyped


async def workflow(ctx: Context) -> str:
    ctx.run(double, "one")  # E: call-overload
    ctx.rpc(greet)  # E: call-overload
    ctx.detached(double, 1, 2)  # E: call-overload
    # the declared type is the context mypy infers R from: no overload gives a str here
    n: str = await ctx.run(double, 1)  # E: call-overload
    child: int = await ctx.detached(double, 1)  # E: assignment
    return str(await ctx.run(double, n)) + str(child)  # E: call-overload


async def forgot_await(ctx: Context) -> int:
    # a missing `await` (or `yield`) leaves the future where its value was meant to be
    x: int = ctx.run(double, 1)  # E: assignment
    return ctx.run(double, x)  # E: return-value


def forgot_run(ctx: Context) -> Generator[DurableFuture[Any], Any, int]:
    # with the yield type annotated, yielding anything but a durable call is caught
    x: int = yield double(ctx, 1)  # E: misc
    return x


def still_functions() -> None:
    # the decorated objects are still the functions, with their own signatures
    ctx = Context.__new__(Context)
    double(ctx, "one")  # E: arg-type
    started = greet(ctx)  # E: call-arg
    started.close()
