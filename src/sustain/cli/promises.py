"""``sustain promises ...``: the promise operations (PROTOCOL.md §2.1-2.6, §7.3)."""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import output, payloads
from sustain.cli.session import Session, json_option, pass_session
from sustain.protocol.records import PROMISE_STATES


@click.group("promises")
def promises() -> None:
    """Get, create, settle and search promises."""


@promises.command("get")
@click.argument("id")
@json_option
@pass_session
def get(session: Session, id: str) -> None:
    """Show one promise."""
    session.run("promise.get", {"id": id}, output.promise_answer)


@promises.command("create")
@click.argument("id")
@click.option(
    "-t", "--timeout", required=True, help="Time until the promise times out, e.g. 1h30m."
)
@click.option(
    "--param", help='The param as JSON {"headers": {...}, "data": ...}; data is base64-encoded.'
)
@click.option("--tags", help='Tags as a JSON object of strings, e.g. {"resonate:target": "..."}.')
@json_option
@pass_session
def create(session: Session, id: str, timeout: str, param: str | None, tags: str | None) -> None:
    """Create a promise (answers the existing one if the id is taken)."""
    data: dict[str, Any] = {
        "id": id,
        "timeoutAt": payloads.now_ms() + payloads.duration("--timeout", timeout),
        "param": payloads.value("--param", param),
        "tags": payloads.tags("--tags", tags),
    }
    session.run("promise.create", data, output.promise_answer)


def _settle(state: str, doc: str) -> click.Command:
    @click.argument("id")
    @click.option(
        "--value", help='The value as JSON {"headers": {...}, "data": ...}; data is base64-encoded.'
    )
    @json_option
    @pass_session
    def settle(session: Session, id: str, value: str | None) -> None:
        data = {"id": id, "state": state, "value": payloads.value("--value", value)}
        session.run("promise.settle", data, output.promise_answer)

    settle.__doc__ = doc
    return click.command()(settle)


promises.add_command(_settle("resolved", "Resolve a pending promise."), "resolve")
promises.add_command(_settle("rejected", "Reject a pending promise."), "reject")
promises.add_command(_settle("rejected_canceled", "Cancel a pending promise."), "cancel")


@promises.command("search")
@click.option("--state", type=click.Choice(PROMISE_STATES), help="Only promises in this state.")
@click.option("--tags", help="Only promises with all these tags (JSON object of strings).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--cursor", help="Continue a previous search.")
@json_option
@pass_session
def search(
    session: Session, state: str | None, tags: str | None, limit: int, cursor: str | None
) -> None:
    """List promises by state and tags, ordered by id."""
    data: dict[str, Any] = {"limit": limit}
    if state is not None:
        data["state"] = state
    if tags is not None:
        data["tags"] = payloads.tags("--tags", tags)
    if cursor is not None:
        data["cursor"] = cursor
    session.run("promise.search", data, output.promise_list)


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
