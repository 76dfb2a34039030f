"""The functions ``test_serverless`` pushes to: one ``Sustain`` served three ways.

``app`` (ASGI, no token), ``secured`` (ASGI, Bearer token ``PUSH_TOKEN``) and ``lambda_handler``
(AWS Lambda).  Each run of a step appends ``step <id>`` to ``SERVERLESS_LOG`` so the tests can
count executions across processes.
"""

from __future__ import annotations

import os
from typing import Any

from sustain import Context, Sustain
from sustain.integrations import asgi, aws_lambda

sustain = Sustain(url=os.environ["SUSTAIN_URL"], ttl=float(os.environ.get("APP_TTL", "10")))


def step(ctx: Context, x: int) -> int:
    with open(os.environ["SERVERLESS_LOG"], "a") as log:
        log.write(f"step {ctx.id}\n")
    return x * 2


@sustain.register
def add_one(ctx: Context, x: int) -> int:
    return x + 1


@sustain.register
def double_then_add(ctx: Context, x: int, pause: float) -> Any:
    y = yield ctx.run(step, x)
    yield ctx.sleep(pause)  # suspends: the push is answered, the timer pushes again
    z = yield ctx.rpc(add_one, y)  # no target: back to this function, as its own push
    return {"value": z, "id": ctx.id}


app = asgi.app(sustain)
secured = asgi.app(sustain, token=os.environ.get("PUSH_TOKEN", "s3cret"))
lambda_handler = aws_lambda.handler(sustain)
