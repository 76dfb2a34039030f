"""Functions registered in a Sustain worker, called by official-SDK workflows.

Served with ``sustain worker tests.interop.apps.sustain_app:sustain --group G``; the server's
URL comes from ``SUSTAIN_URL`` (remote mode), as it would for any deployed worker.
"""

from __future__ import annotations

from typing import Any

from sustain import Context, Sustain
from sustain.sdk.retry import Never

sustain = Sustain()


@sustain.register
def sus_echo(ctx: Context, payload: Any) -> dict[str, Any]:
    return {"got": payload, "by": "sustain"}


@sustain.register(retry=Never())
def sus_fail(ctx: Context, message: str) -> None:
    raise ValueError(message)


@sustain.register
def sus_double(ctx: Context, n: int) -> int:
    return 2 * n


@sustain.register
def sus_workflow(ctx: Context, n: int, target: str, add: str) -> Any:
    """A Sustain workflow called by an official SDK: a local step, a durable sleep, and an rpc
    back to an official worker's ``add``, under a root promise the official SDK created."""
    doubled = yield ctx.run(sus_double, n)
    yield ctx.sleep(0.5)
    added = yield ctx.options(target=target).rpc(add, doubled, 1)
    return {"doubled": doubled, "added": added}
