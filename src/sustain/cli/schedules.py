"""``sustain schedules ...``: the schedule operations (PROTOCOL.md §2.18-2.21, §7.3)."""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import output, payloads
from sustain.cli.session import Session, json_option, pass_session


@click.group("schedules")
def schedules() -> None:
    """Create, delete and inspect cron schedules."""


@schedules.command("get")
@click.argument("id")
@json_option
@pass_session
def get(session: Session, id: str) -> None:
    """Show one schedule."""
    session.run("schedule.get", {"id": id}, output.schedule_answer)


@schedules.command("create")
@click.argument("id")
@click.option("--cron", required=True, help="Unix cron expression (UTC), e.g. '0 9 * * 1-5'.")
@click.option("--promise-id", required=True, help="Id template, e.g. '{{.id}}.{{.timestamp}}'.")
@click.option("--promise-timeout", required=True, help="Timeout of each promise, e.g. 1h.")
@click.option(
    "--promise-param", help='JSON {"headers": {...}, "data": ...}; data is base64-encoded.'
)
@click.option("--promise-tags", help="Tags of each promise (JSON object; needs resonate:target).")
@json_option
@pass_session
def create(
    session: Session,
    *,
    id: str,
    cron: str,
    promise_id: str,
    promise_timeout: str,
    promise_param: str | None,
    promise_tags: str | None,
) -> None:
    """Create a schedule that creates a promise at every cron occurrence."""
    data: dict[str, Any] = {
        "id": id,
        "cron": cron,
        "promiseId": promise_id,
        "promiseTimeout": payloads.duration("--promise-timeout", promise_timeout),
        "promiseParam": payloads.value("--promise-param", promise_param),
        "promiseTags": payloads.tags("--promise-tags", promise_tags),
    }
    session.run("schedule.create", data, output.schedule_answer)


@schedules.command("delete")
@click.argument("id")
@json_option
@pass_session
def delete(session: Session, id: str) -> None:
    """Delete a schedule (promises it created stay)."""
    session.run("schedule.delete", {"id": id}, lambda _: output.done(f"Schedule {id} deleted."))


@schedules.command("search")
@click.option("--tags", help="Only schedules whose promise tags include these (JSON object).")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--cursor", help="Continue a previous search.")
@json_option
@pass_session
def search(session: Session, tags: str | None, limit: int, cursor: str | None) -> None:
    """List schedules, ordered by id."""
    data: dict[str, Any] = {"limit": limit}
    if tags is not None:
        data["tags"] = payloads.tags("--tags", tags)
    if cursor is not None:
        data["cursor"] = cursor
    session.run("schedule.search", data, output.schedule_list)
