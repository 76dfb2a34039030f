"""What ``invoke`` and ``schedules create`` share: a function call as options.

``-f FUNC`` names the function; ``--arg VALUE`` (repeatable, positional) and ``--kwarg
NAME=VALUE`` (repeatable) give its arguments, each read as JSON, else as a plain string
(``payloads.user_json``); ``--json-args '[...]'`` gives every positional argument at once and
``--args-file PATH`` an object ``{"args": [...], "kwargs": {...}}`` from a file.  The
result is the invocation the SDKs' workers decode (SDK-WIRE §1.3):
``{"func", "args", "kwargs", "version"}``, base64 of its JSON in ``param.data``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from sustain.cli import payloads
from sustain.cli.errors import CliError
from sustain.protocol.values import encode_data

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_GROUP = "default"


def target_address(target: str) -> str:
    """A full address, or a bare group name meaning ``poll://any@<group>``."""
    return target if "://" in target else f"poll://any@{target}"


def group_of(address: str) -> str:
    """The group of a ``poll://any@group`` address (the address itself otherwise)."""
    _, _, rest = address.partition("@")
    return rest.split("/", 1)[0] if address.startswith("poll://") and rest else address


@dataclass(frozen=True)
class Invocation:
    func: str
    args: list[Any]
    kwargs: dict[str, Any]
    version: int

    def payload(self) -> dict[str, Any]:
        return {"func": self.func, "args": self.args, "kwargs": self.kwargs,
                "version": self.version}  # fmt: skip

    def param(self) -> dict[str, Any]:
        return {"headers": {}, "data": encode_data(self.payload())}


def options(*, func_required: bool) -> Callable[[F], F]:
    """The ``-f/--arg/--kwarg/--json-args/--args-file/--version`` options."""

    def decorate(command: F) -> F:
        for option in reversed(
            [
                click.option(
                    "-f", "--func", required=func_required, help="Name of the registered function."
                ),
                click.option(
                    "--arg",
                    "args",
                    multiple=True,
                    metavar="VALUE",
                    help="A positional argument: JSON, else a plain string; repeatable.",
                ),
                click.option(
                    "--kwarg",
                    "kwargs",
                    multiple=True,
                    metavar="NAME=VALUE",
                    help="A keyword argument, VALUE read as --arg; repeatable.",
                ),
                click.option("--json-args", help="All positional arguments as one JSON array."),
                click.option(
                    "--args-file",
                    type=click.Path(dir_okay=False, allow_dash=True),
                    help='A JSON file {"args": [...], "kwargs": {...}} (- for stdin).',
                ),
                click.option(
                    "--version",
                    type=click.IntRange(min=0),
                    default=None,
                    help="Function version, 1 if not given.  A version given pins the "
                    "execution: only a worker serving that version runs it, and it waits "
                    "until one is connected (0: the latest the worker has, not pinned).",
                ),
            ]
        ):
            command = option(command)
        return command

    return decorate


def build(
    func: str,
    *,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    json_args: str | None,
    args_file: str | None,
    version: int | None,
) -> Invocation:
    """The invocation the options describe; a ``CliError`` names a conflicting option."""
    if args_file is not None and (args or kwargs or json_args is not None):
        raise CliError("use either --args-file or --arg/--kwarg/--json-args, not both")
    if args and json_args is not None:
        raise CliError("use either --arg or --json-args, not both")
    if args_file is not None:
        found = payloads.parse_json("--args-file", payloads.read_file("--args-file", args_file))
        if not isinstance(found, dict) or set(found) - {"args", "kwargs"}:
            raise CliError('--args-file must hold a JSON object {"args": [...], "kwargs": {...}}')
        positional, named = found.get("args", []), found.get("kwargs", {})
        if not isinstance(positional, list) or not isinstance(named, dict):
            raise CliError("--args-file: 'args' must be an array and 'kwargs' an object")
        return Invocation(func, positional, named, 1 if version is None else version)
    positional = (
        payloads.json_array("--json-args", json_args)
        if json_args is not None
        else [payloads.user_json(a) for a in args]
    )
    named = dict(payloads.kwarg("--kwarg", k) for k in kwargs)
    return Invocation(func, positional, named, 1 if version is None else version)
