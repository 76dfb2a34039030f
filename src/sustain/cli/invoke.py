"""``sustain invoke``: start a function on a worker group (PROTOCOL.md §7.3).

The invocation is a ``promise.create`` whose ``param.data`` is base64 of the JSON
``{"func", "args", "kwargs", "version"}`` that the SDKs' workers decode, with a
``resonate:target`` tag naming the group.  ``--delay`` defers the first execute message with
``resonate:delay`` (an absolute time) and extends the timeout by the same amount.
"""

from __future__ import annotations

import json
from typing import Any

import click

from sustain.cli import output, payloads
from sustain.cli.errors import CliError
from sustain.cli.session import Session, json_option, pass_session
from sustain.protocol.values import encode_data

DEFAULT_TARGET = "poll://any@default"


def target_address(target: str) -> str:
    """A full address, or a bare group name meaning ``poll://any@<group>``."""
    return target if "://" in target else f"poll://any@{target}"


def parse_arg(text: str) -> Any:
    """An ``--arg`` value: JSON when it parses, else the plain string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text


@click.command("invoke")
@click.argument("id")
@click.option("-f", "--func", required=True, help="Name of the registered function.")
@click.option("--arg", "args", multiple=True, help="An argument (JSON, else a string); repeatable.")
@click.option("--json-args", help="All arguments as one JSON array.")
@click.option("--version", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("-t", "--timeout", default="1h", show_default=True, help="Time to complete.")
@click.option(
    "--target",
    default=DEFAULT_TARGET,
    show_default=True,
    help="Worker address, or a bare group name (= poll://any@<group>).",
)
@click.option("--delay", help="Wait this long before the first execution, e.g. 10m.")
@json_option
@pass_session
def invoke(
    session: Session,
    *,
    id: str,
    func: str,
    args: tuple[str, ...],
    json_args: str | None,
    version: int,
    timeout: str,
    target: str,
    delay: str | None,
) -> None:
    """Invoke FUNC durably under promise ID."""
    if args and json_args is not None:
        raise CliError("use either --arg or --json-args, not both")
    arguments = (
        payloads.json_array("--json-args", json_args)
        if json_args is not None
        else [parse_arg(a) for a in args]
    )
    timeout_ms = payloads.duration("--timeout", timeout)
    delay_ms = payloads.duration("--delay", delay) if delay is not None else 0
    now = payloads.now_ms()
    tags = {"resonate:target": target_address(target)}
    if delay_ms > 0:
        tags["resonate:delay"] = str(now + delay_ms)
    invocation = {"func": func, "args": arguments, "kwargs": {}, "version": version}
    data = {
        "id": id,
        "timeoutAt": now + timeout_ms + delay_ms,
        "param": {"headers": {}, "data": encode_data(invocation)},
        "tags": tags,
    }
    session.run("promise.create", data, output.promise_answer)
