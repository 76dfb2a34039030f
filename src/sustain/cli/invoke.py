"""``sustain invoke``: start a function on a worker group (PROTOCOL.md §7.3).

The invocation is a ``promise.create`` whose ``param`` is the invocation the SDKs' workers
decode (``invocation.py``), with a ``resonate:target`` tag naming the group.  ``--delay``
defers the first execute message with ``resonate:delay`` (an absolute time) and extends the
timeout by the same amount.

The same id again answers the existing promise: its execution, not a new one.  When the
recorded call differs from this one (another function or other arguments), a warning says
so on stderr; ``--strict`` makes it an error.

``--wait`` follows the promise until it settles (``waiting.py``): the result is printed, a
rejected execution exits 1 with its error.  The CLI cannot ask which functions the connected
workers have, so it watches the task: one still unclaimed after a few seconds prints a note
that no worker of the group has picked it up, and a task a worker halted (the SDK's workers
halt a task whose function they do not have, after a few deliveries) ends the wait with an
error naming the function and the group.
"""

from __future__ import annotations

import json
from typing import Any

import click

from sustain.cli import invocation, output, payloads, waiting
from sustain.cli.errors import CliError
from sustain.cli.session import Session, json_option, pass_session
from sustain.protocol.values import decode_data
from sustain.protocol.versions import pin_tags


def recorded_call(promise: dict[str, Any]) -> dict[str, Any] | None:
    """The invocation stored in a promise's param, if it holds one."""
    param = promise.get("param")
    text = decode_data(param.get("data")) if isinstance(param, dict) else None
    try:
        payload = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def differences(recorded: dict[str, Any] | None, call: invocation.Invocation) -> str | None:
    """How the recorded call differs from ``call`` (func, args, kwargs), or None."""
    if recorded is None:
        return "it holds no invocation"
    found = []
    for key, mine in (("func", call.func), ("args", call.args), ("kwargs", call.kwargs)):
        theirs = recorded.get(key, [] if key == "args" else {} if key == "kwargs" else None)
        if theirs != mine:
            found.append(f"{key} {json.dumps(theirs)} (this call: {json.dumps(mine)})")
    return "; ".join(found) or None


@click.command("invoke")
@click.argument("id")
@invocation.options(func_required=True)
@click.option(
    "-t",
    "--timeout",
    default="1h",
    show_default=True,
    help="Time to complete; --wait waits at most this long.",
)
@click.option(
    "--target",
    default=invocation.DEFAULT_GROUP,
    show_default=True,
    help="Worker group, or a full address (poll://any@<group>, http://...).",
)
@click.option("--delay", help="Wait this long before the first execution, e.g. 10m.")
@click.option(
    "--wait",
    is_flag=True,
    help="Wait for the result and print it; exit 1 if the execution fails.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail when ID already exists with another function or other arguments.",
)
@json_option
@pass_session
def invoke(
    session: Session,
    *,
    id: str,
    func: str,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    json_args: str | None,
    args_file: str | None,
    version: int | None,
    timeout: str,
    target: str,
    delay: str | None,
    wait: bool,
    strict: bool,
) -> None:
    """Invoke FUNC durably under promise ID (the same ID again: the same execution).

    \b
    Examples:
      sustain invoke order-42 -f process_order --arg 42 --kwarg rush=true --target workers
      sustain invoke report-1 -f report --wait --timeout 5m

    With --wait, the result is printed as JSON; a rejected, canceled or timed-out
    execution exits 1 with its error.  A task no worker has picked up after 5 s prints a
    note on stderr (is a worker of the group running?) and the wait goes on; a task halted
    because no worker of the group has FUNC ends the wait with exit 1.  Without --wait the
    CLI cannot tell: it exits 0 once the promise exists.
    """
    call = invocation.build(
        func, args=args, kwargs=kwargs, json_args=json_args, args_file=args_file, version=version
    )
    param = call.param()
    timeout_ms = payloads.duration("--timeout", timeout)
    delay_ms = payloads.duration("--delay", delay) if delay is not None else 0
    now = payloads.now_ms()
    address = invocation.target_address(target)
    tags = {"resonate:target": address}
    if version:  # named: pinned to it (protocol/versions.py)
        tags.update(pin_tags(func, version))
    if delay_ms > 0:
        tags["resonate:delay"] = str(now + delay_ms)
    data = {
        "id": id,
        "timeoutAt": now + timeout_ms + delay_ms,
        "param": param,
        "tags": tags,
    }
    answer = session.request("promise.create", data)
    promise = answer.get("promise") if isinstance(answer, dict) else None
    promise = promise if isinstance(promise, dict) else {"id": id}
    stored = promise.get("param")
    if not (isinstance(stored, dict) and stored.get("data") == param["data"]):
        differ = differences(recorded_call(promise), call)
        if differ is not None:
            message = f"promise {id!r} already exists with another call: {differ}"
            if strict:
                raise CliError(message + " (--strict)")
            output.warning(message + "; this is its execution, not a new one")
    if not wait:
        session.show(answer, output.promise_answer)
        return
    settled = waiting.until_settled(session, id, func, invocation.group_of(address))
    session.show({"promise": settled}, output.result)
    waiting.fail_unless_resolved(settled)
