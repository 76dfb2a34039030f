"""W1-W4 on Restate: the service deployment, served *inside the Restate virtual environment*.

``<venv>/bin/python restate_app.py PORT`` serves it with Hypercorn on 127.0.0.1:PORT, in
this one process (``hypercorn.asyncio.serve``, as Restate's serving guide shows; the
``hypercorn`` command would fork a worker process).  The runner (``peers/restate_peer.py``)
starts a ``restate-server``, registers this deployment through the admin API and invokes
the workflows through the ingress.  The code is
Restate's documented idiom: ``restate.Workflow`` objects with a ``@main()`` handler,
``ctx.run_typed`` for a durable step (its result journaled), ``ctx.service_call`` for a child
invocation of a ``restate.Service`` handler, ``ctx.sleep`` for the durable sleep.

Only the standard library and ``restate`` (``restate-sdk``) are importable here.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import timedelta

import hypercorn.asyncio
import hypercorn.config
import restate

children = restate.Service("Children")


@children.handler()
async def double(ctx: restate.Context, i: int) -> int:
    """W3's child: a child invocation of its own."""
    return 2 * i


def add_one(x: int) -> int:
    return x + 1


def wall_clock() -> float:
    # A Python function, not the builtin time.time: run_typed inspects its signature.
    return time.time()


chain = restate.Workflow("Chain")


@chain.main(name="run")
async def chain_run(ctx: restate.WorkflowContext, n: int) -> int:
    """W1: ``n`` sequential durable steps; returns ``n``."""
    x = 0
    for _ in range(n):
        x = await ctx.run_typed("add_one", add_one, restate.RunOptions(), x)
    return x


three = restate.Workflow("Three")


@three.main(name="run")
async def three_run(ctx: restate.WorkflowContext, x: int) -> int:
    """W2: three sequential durable steps; returns ``x + 3``."""
    for _ in range(3):
        x = await ctx.run_typed("add_one", add_one, restate.RunOptions(), x)
    return x


fanout = restate.Workflow("Fanout")


@fanout.main(name="run")
async def fanout_run(ctx: restate.WorkflowContext, n: int) -> int:
    """W3: start ``n`` child invocations at once, then sum them; returns ``n * (n - 1)``."""
    calls = [ctx.service_call(double, i) for i in range(n)]
    total = 0
    for call in calls:
        total += await call
    return total


nap = restate.Workflow("Nap")


@nap.main(name="run")
async def nap_run(ctx: restate.WorkflowContext, seconds: float) -> list[float]:
    """W4: the intended wake time as the workflow sees it (wall clock just before the sleep +
    ``seconds``; the runner replaces it by the deadline the peer recorded for the sleep), then
    the wall clock recorded by the first step after the durable sleep."""
    intended = time.time() + seconds
    await ctx.sleep(timedelta(seconds=seconds))
    woke = await ctx.run_typed("wall_clock", wall_clock, restate.RunOptions())
    return [intended, woke]


ping = restate.Service("Ping")


@ping.handler()
async def pong(ctx: restate.Context) -> str:
    return "pong"


app = restate.app(services=[children, chain, three, fanout, nap, ping])


def serve(port: int) -> None:
    config = hypercorn.config.Config()
    config.bind = [f"127.0.0.1:{port}"]
    # Restate's serving guide: the server multiplexes every invocation over HTTP/2 streams;
    # Hypercorn's default cap of 100 concurrent streams would queue W2's 1,000 workflows.
    config.h2_max_concurrent_streams = 2**31 - 1
    config.keep_alive_max_requests = 2**31 - 1
    config.keep_alive_timeout = 2**31 - 1
    config.loglevel = "WARNING"
    asyncio.run(hypercorn.asyncio.serve(app, config))


if __name__ == "__main__":
    serve(int(sys.argv[1]))
