"""``sustain promises ...``: the promise operations (PROTOCOL.md §2.1-2.6, §7.3).

Values (``--param``, ``--value``) are written as users think of them and encoded for them;
``--raw`` takes the wire form (see ``payloads``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from sustain.cli import output, payloads, status
from sustain.cli.session import (
    Paging,
    Session,
    all_tags_option,
    json_option,
    paging_options,
    pass_session,
)
from sustain.protocol.records import PROMISE_STATES

F = TypeVar("F", bound=Callable[..., Any])

RAW_HELP = 'Take the wire form {"headers": {...}, "data": "<base64>"} instead, unchanged.'


def value_options(name: str, what: str) -> Callable[[F], F]:
    """``--NAME JSON``, ``--NAME-file PATH`` and ``--raw``."""

    def decorate(func: F) -> F:
        func = click.option("--raw", is_flag=True, help=RAW_HELP)(func)
        func = click.option(
            f"--{name}-file",
            type=click.Path(dir_okay=False, allow_dash=True),
            help=f"Read the {what} from a file (- for stdin), as --{name}.",
        )(func)
        return click.option(
            f"--{name}",
            metavar="JSON",
            help=f"The {what}: a JSON value (text that is not JSON is taken as a string); "
            "it is encoded for you.",
        )(func)

    return decorate


@click.group("promises")
def promises() -> None:
    """Get, create, settle and search promises."""


@promises.command("get")
@click.argument("id")
@all_tags_option
@json_option
@pass_session
def get(session: Session, id: str) -> None:
    """Show one promise, and its status record when a step or execution failed (attempts,
    last error and traceback, next retry, why it is paused)."""
    answer = session.request("promise.get", {"id": id})
    record = status.fetch(session, [id]).get(id)
    if record is not None and isinstance(answer, dict):
        answer = {**answer, "status": record}
    session.show(answer, output.promise_answer)


@promises.command("create")
@click.argument("id")
@click.option(
    "-t", "--timeout", required=True, help="Time until the promise times out, e.g. 1h30m."
)
@value_options("param", "param")
@click.option("--tags", help='Tags as a JSON object of strings, e.g. {"resonate:target": "..."}.')
@all_tags_option
@json_option
@pass_session
def create(
    session: Session,
    *,
    id: str,
    timeout: str,
    param: str | None,
    param_file: str | None,
    raw: bool,
    tags: str | None,
) -> None:
    """Create a promise (answers the existing one if the id is taken)."""
    data: dict[str, Any] = {
        "id": id,
        "timeoutAt": payloads.now_ms() + payloads.duration("--timeout", timeout),
        "param": payloads.user_value("--param", param, param_file, raw=raw),
        "tags": payloads.tags("--tags", tags),
    }
    session.run("promise.create", data, output.promise_answer)


def _settle(state: str, doc: str) -> click.Command:
    @click.argument("id")
    @value_options("value", "value")
    @all_tags_option
    @json_option
    @pass_session
    def settle(
        session: Session, id: str, value: str | None, value_file: str | None, raw: bool
    ) -> None:
        data = {
            "id": id,
            "state": state,
            "value": payloads.user_value("--value", value, value_file, raw=raw),
        }
        session.run("promise.settle", data, output.promise_answer)

    settle.__doc__ = doc
    return click.command()(settle)


promises.add_command(
    _settle(
        "resolved",
        """Resolve a pending promise.

        \b
        Example:
          sustain promises resolve approve-alice --value '{"ok": true}'
        """,
    ),
    "resolve",
)
promises.add_command(
    _settle(
        "rejected",
        """Reject a pending promise.

        \b
        Example:
          sustain promises reject approve-alice --value '"budget exceeded"'
        """,
    ),
    "reject",
)
promises.add_command(
    _settle(
        "rejected_canceled",
        """Cancel one pending promise (only it: `sustain cancel ID` cancels an execution
        and its pending descendants, and stops their workers).""",
    ),
    "cancel",
)


@promises.command("search")
@click.option("--state", type=click.Choice(PROMISE_STATES), help="Only promises in this state.")
@click.option("--tags", help="Only promises with all these tags (JSON object of strings).")
@paging_options(100)
@all_tags_option
@json_option
@pass_session
def search(session: Session, *, state: str | None, tags: str | None, paging: Paging) -> None:
    """List promises by state and tags, ordered by id; a page at a time, or --all."""
    data = paging.data()
    if state is not None:
        data["state"] = state
    if tags is not None:
        data["tags"] = payloads.tags("--tags", tags)
    answer = session.search("promise.search", data, "promises", paging.everything)
    session.show(answer, output.promise_list)


@promises.command("register-callback")
@click.argument("awaited")
@click.argument("awaiter")
@json_option
@pass_session
def register_callback(session: Session, awaited: str, awaiter: str) -> None:
    """Resume AWAITER's task when AWAITED settles."""
    data = {"awaited": awaited, "awaiter": awaiter}
    session.run("promise.register_callback", data, output.promise_answer)


@promises.command("register-listener")
@click.argument("awaited")
@click.argument("address")
@json_option
@pass_session
def register_listener(session: Session, awaited: str, address: str) -> None:
    """Send an unblock message to ADDRESS when AWAITED settles."""
    data = {"awaited": awaited, "address": address}
    session.run("promise.register_listener", data, output.promise_answer)
