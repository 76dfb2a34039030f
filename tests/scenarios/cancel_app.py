"""The workflows of the cancel tests (test_cancel.py), served by ``sustain worker``.

Every leaf appends a line to ``$CANCEL_MARKS/<what>`` when it starts, ends or is
interrupted, so the test counts how often each ran without reading logs.  ``tree`` runs, all
at once, an async leaf that waits forever, a sync leaf that waits for the file
``$CANCEL_MARKS/gate``, a leaf that always fails and is retried every 0.2 s, an rpc child
and a detached call in the other group (``$CANCEL_OTHER``), both async leaves that wait forever.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from sustain import CanceledError, Context, Sustain
from sustain.sdk.retry import Constant

MARKS = Path(os.environ.get("CANCEL_MARKS", "."))
OTHER = os.environ.get("CANCEL_OTHER", "other")

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), ttl=10)


def mark(what: str) -> None:
    with (MARKS / what).open("a") as out:
        out.write(f"{os.getpid()}\n")


async def wait_forever(what: str) -> str:
    mark(f"{what}-start")
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        mark(f"{what}-cancelled")
        raise
    return what


async def async_leaf(ctx: Context) -> str:
    return await wait_forever("async")


def sync_leaf(ctx: Context) -> str:
    mark("sync-start")
    while not (MARKS / "gate").exists():
        time.sleep(0.02)
    mark("sync-end")
    return "sync result"


def flaky_leaf(ctx: Context) -> None:
    mark("flaky")
    raise RuntimeError("always fails")


@sustain.register
async def remote_leaf(ctx: Context, what: str) -> str:
    return await wait_forever(what)


@sustain.register
async def tree(ctx: Context) -> list[str]:
    running = [
        ctx.run(async_leaf),
        ctx.run(sync_leaf),
        ctx.options(retry=Constant(delay=0.2, max_retries=None)).run(flaky_leaf),
        ctx.options(target=OTHER).rpc(remote_leaf, "remote"),
    ]
    ctx.options(target=OTHER).detached(remote_leaf, "detached")
    return [await future for future in running]


@sustain.register
async def parent(ctx: Context) -> str:
    try:
        await ctx.options(target=OTHER).rpc(remote_leaf, "child")
    except CanceledError:
        return "saw CanceledError"
    return "child finished"
