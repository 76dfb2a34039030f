"""What a type checker infers from the SDK, checked twice.

mypy (strict) checks every ``assert_type`` below (``make types`` lists this module, and
``test_typing.py`` runs mypy on it); ``main()`` then runs the same calls for real, embedded
on an in-memory store, and asserts that the values have the types the checker was told, so
an annotation that lies about what arrives fails here too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any, assert_type

from sustain import Begin, Context, DurableFuture, Handle, Never, Sustain

sustain = Sustain(store=":memory:")


@sustain.register
def double(ctx: Context, x: int) -> int:
    return 2 * x


@sustain.register(name="greeting", version=2, retry=Never())
async def greet(ctx: Context, name: str, *, punctuation: str = "!") -> str:
    return f"hello {name}{punctuation}"


def shout(ctx: Context, words: list[str]) -> list[str]:
    return [w.upper() for w in words]


# The non-decorator form hands back the same function, with the same type: still callable
# with its own signature (the decorator forms too: see wrong_calls.py).
assert_type(sustain.register(shout)(Context.__new__(Context), ["x"]), list[str])


@sustain.register
async def total(ctx: Context, xs: list[int]) -> int:
    # ctx.run: a DurableFuture of the function's result, so `await` infers it
    first = await ctx.run(double, xs[0])
    assert_type(first, int)
    rest = [await ctx.run(double, x) for x in xs[1:]]
    assert_type(rest, list[int])
    return first + sum(rest)


def durable_calls(ctx: Context) -> None:
    """Only checked, never run: each of these calls would start a durable call."""
    assert_type(ctx.run(double, 1), DurableFuture[int])
    assert_type(ctx.run(greet, "ann", punctuation="?"), DurableFuture[str])
    assert_type(ctx.rpc(double, 2), DurableFuture[int])
    assert_type(ctx.begin_run(double, 4), Begin[int])
    assert_type(ctx.begin_rpc(greet, "bo"), Begin[str])
    assert_type(ctx.run(count, ["a"]), DurableFuture[dict[str, int]])
    assert_type(ctx.run(shout, ["a"]), DurableFuture[list[str]])
    # a detached call gives the new execution's id, not its result (sustain.get(id) does)
    assert_type(ctx.detached(double, 3), DurableFuture[str])
    # by name: the checker cannot know the function, so the value is Any
    assert_type(ctx.run("double", 5), DurableFuture[Any])
    assert_type(ctx.rpc("double", 5), DurableFuture[Any])
    assert_type(ctx.promise(), DurableFuture[Any])
    # an options view keeps the typing
    assert_type(ctx.options(timeout=5, retry=Never()).run(double, 6), DurableFuture[int])
    assert_type(ctx.sleep(0), DurableFuture[None])
    assert_type(ctx.now(), DurableFuture[float])
    assert_type(ctx.random(), DurableFuture[float])
    assert_type(ctx.uuid(), DurableFuture[str])


@sustain.register
async def observed(ctx: Context) -> list[str]:
    """What each call above gives at run time: the types the checker was told."""
    assert_type(await ctx.begin_rpc(greet, "bo"), str)
    values = [
        await ctx.run(double, 1), await ctx.run(greet, "ann"), await ctx.rpc(double, 2),
        await ctx.begin_run(double, 3), await ctx.detached(double, 4), await ctx.now(),
        await ctx.random(), await ctx.uuid(),
    ]  # fmt: skip
    return [type(v).__name__ for v in values]


@sustain.register
def count(ctx: Context, words: list[str]) -> Generator[DurableFuture[Any], Any, dict[str, int]]:
    # A generator's send type is one type for every `yield`, so what `yield` gives is what
    # the annotation says (Any here): annotate the variable to have it checked afterwards.
    loud: list[str] = yield ctx.run(shout, words)
    n: int = yield ctx.run(double, len(loud))
    return {"words": len(loud), "doubled": n}


@sustain.register
def later(ctx: Context, n: int) -> Generator[DurableFuture[Any] | Begin[Any], Any, int]:
    # begin_run: a yield gives the future itself, a second yield its value
    started: DurableFuture[int] = yield ctx.begin_run(double, n)
    value: int = yield started
    return value


async def patched(ctx: Context) -> None:
    """Only checked, never run: a patch's answer is a bool once awaited."""
    assert_type(await ctx.patched("new-branch"), bool)


def handles() -> None:
    """Only checked, never run (main() runs these calls)."""
    # run/rpc: a Handle of the function's result; for a generator workflow, its return type
    assert_type(sustain.run("typed-double", double, 21), Handle[int])
    assert_type(sustain.run("typed-greet", greet, "ann"), Handle[str])
    assert_type(sustain.run("typed-total", total, [1, 2, 3]), Handle[int])
    assert_type(sustain.run("typed-observed", observed), Handle[list[str]])
    assert_type(sustain.run("typed-count", count, ["a", "b"]), Handle[dict[str, int]])
    assert_type(sustain.rpc("typed-rpc", double, 1), Handle[int])
    assert_type(sustain.run("typed-later", later, 5), Handle[int])
    assert_type(sustain.begin_run("typed-double", double, 21), Handle[int])
    assert_type(sustain.options(timeout=60).run("typed-double", double, 21), Handle[int])
    # by name, and get(): untyped
    assert_type(sustain.run("typed-by-name", "double", 4), Handle[Any])
    assert_type(sustain.rpc("typed-rpc-by-name", "double", 4), Handle[Any])
    assert_type(sustain.get("typed-double"), Handle[Any])
    assert_type(sustain.run("typed-double", double, 21).result(), int)
    assert_type(sustain.run("typed-count", count, ["a", "b"]).result(timeout=30), dict[str, int])


async def awaited() -> None:
    """Only checked, never run."""
    assert_type(await sustain.run("typed-greet", greet, "ann"), str)
    assert_type(await sustain.run("typed-total", total, [1, 2, 3]).aresult(), int)


def main() -> None:
    """The same calls, run: each value is what the checker was told it is."""
    with sustain:
        assert sustain.run("typed-double", double, 21).result(timeout=30) == 42
        assert sustain.run("typed-total", total, [1, 2, 3]).result(timeout=30) == 12
        counted = sustain.run("typed-count", count, ["a", "b"]).result(timeout=30)
        assert counted == {"words": 2, "doubled": 4}
        assert sustain.run("typed-by-name", "double", 4).result(timeout=30) == 8
        assert sustain.run("typed-later", later, 5).result(timeout=30) == 10
        assert sustain.get("typed-double").result(timeout=30) == 42
        seen = sustain.run("typed-observed", observed).result(timeout=30)
        assert seen == ["int", "str", "int", "int", "str", "float", "float", "str"]

    async def in_async() -> None:
        async with Sustain(store=":memory:") as other:
            other.register(greet)
            assert await other.run("typed-greet", greet, "ann") == "hello ann!"

    asyncio.run(in_async())


if __name__ == "__main__":
    main()
