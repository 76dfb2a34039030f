"""The workflow of the retry (fork) tests (test_fork.py), served by ``sustain worker``.

``pipeline`` runs four steps: a leaf, an rpc child, a child workflow of two leaves and a
last leaf.  Every leaf appends a line to ``$FORK_MARKS/<name>`` when it runs, so the test
counts how often each ran; the leaf ``three-b`` fails (not retried) until the file
``$FORK_MARKS/fixed`` exists: the fix the user deploys before retrying.  The embedded
tests (tests/sdk/test_fork.py) register the same functions on a Sustain of their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from sustain import Context, NonRetryableError, Sustain

MARKS = Path(os.environ.get("FORK_MARKS", "."))

LEAVES = ("one", "two", "three-a", "three-b", "four")

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), ttl=10)


def leaf(ctx: Context, name: str) -> str:
    with (MARKS / name).open("a") as out:
        out.write(f"{os.getpid()}\n")
    if name == "three-b" and not (MARKS / "fixed").exists():
        raise NonRetryableError("three-b is broken until the fix is deployed")
    return name


@sustain.register
async def remote_leaf(ctx: Context, name: str) -> str:
    return leaf(ctx, name)


async def child_workflow(ctx: Context) -> list[str]:
    return [await ctx.run(leaf, "three-a"), await ctx.run(leaf, "three-b")]


@sustain.register
async def pipeline(ctx: Context) -> list[object]:
    one = await ctx.run(leaf, "one")
    two = await ctx.rpc(remote_leaf, "two")
    three = await ctx.run(child_workflow)
    four = await ctx.run(leaf, "four")
    return [one, two, three, four]


def runs(marks: Path) -> dict[str, int]:
    """How often each leaf ran, by the lines of its mark file (absent: never)."""
    counted = {name: marks / name for name in LEAVES}
    return {k: len(p.read_text().splitlines()) for k, p in counted.items() if p.exists()}
