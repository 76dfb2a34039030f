"""``sustain schedules ...``: the schedule operations (PROTOCOL.md §2.18-2.21, §7.3).

``create NAME --cron ... -f FUNC --arg ... --target GROUP`` schedules a function call the way
``invoke`` starts one (``invocation.py``); the promise each firing creates gets the id
``NAME.<firing time in ms>`` (the SDK's ``sustain.schedule`` template
``{{.id}}.{{.timestamp}}``) and a timeout of one day (the SDK's default for a top-level
call), unless ``--promise-id`` / ``--promise-timeout`` say otherwise.  Without ``-f`` the
schedule creates plain promises (``--promise-param``, ``--promise-tags``).

The cron is parsed here first, with the engine's own parser, so a mistake is reported with
the field and the reason (the server's 400 is the catalogue's bare ``Invalid cron
expression``).  ``next NAME -n 5`` computes the next firings locally from the stored cron.
"""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import invocation, output, payloads
from sustain.cli.errors import CliError, ErrorAnswer
from sustain.cli.promises import value_options
from sustain.cli.session import (
    Paging,
    Session,
    all_tags_option,
    json_option,
    paging_options,
    pass_session,
    show_command,
)
from sustain.engine.cron import Cron, InvalidCron

DEFAULT_PROMISE_ID = "{{.id}}.{{.timestamp}}"
DEFAULT_PROMISE_TIMEOUT = "24h"


def parse_cron(cron: str) -> Cron:
    try:
        return Cron.parse(cron)
    except InvalidCron as err:
        raise CliError(f"invalid --cron {cron!r}: {err}") from None


@click.group("schedules")
def schedules() -> None:
    """Create, delete and inspect cron schedules."""


show_command(schedules, "schedule.get", output.schedule_answer, "Show one schedule.", all_tags=True)


@schedules.command("create")
@click.argument("name")
@click.option("--cron", required=True, help="Unix cron expression (UTC), e.g. '0 9 * * 1-5'.")
@invocation.options(func_required=False)
@click.option(
    "--target",
    help="Worker group (or address) that runs FUNC [default: default]; "
    "resonate:target of each promise.",
)
@click.option(
    "--promise-id",
    default=DEFAULT_PROMISE_ID,
    show_default=True,
    help="Id template of each promise; {{.id}} is NAME, {{.timestamp}} the firing time (ms).",
)
@click.option(
    "--promise-timeout",
    default=DEFAULT_PROMISE_TIMEOUT,
    show_default=True,
    help="Timeout of each promise, from its firing.",
)
@value_options("promise-param", "param of each promise (without -f)")
@click.option("--promise-tags", help="More tags of each promise (JSON object of strings).")
@all_tags_option
@json_option
@pass_session
def create(
    session: Session,
    *,
    name: str,
    cron: str,
    func: str | None,
    args: tuple[str, ...],
    kwargs: tuple[str, ...],
    json_args: str | None,
    args_file: str | None,
    version: int | None,
    target: str | None,
    promise_id: str,
    promise_timeout: str,
    promise_param: str | None,
    promise_param_file: str | None,
    raw: bool,
    promise_tags: str | None,
) -> None:
    """Create schedule NAME: at every cron firing, call FUNC (or create a promise).

    \b
    Example:
      sustain schedules create standup --cron "0 9 * * 1-5" -f remind --arg team \\
          --target workers

    Each firing creates the promise {{.id}}.{{.timestamp}} (NAME.<firing time in ms>) with
    a timeout of 24h, as the SDK's sustain.schedule does; the cron is checked here first.
    """
    parse_cron(cron)
    tags = payloads.tags("--promise-tags", promise_tags)
    if func is not None:
        if promise_param is not None or promise_param_file is not None:
            raise CliError("use either -f with --arg/--kwarg or --promise-param, not both")
        param = invocation.build(
            func,
            args=args,
            kwargs=kwargs,
            json_args=json_args,
            args_file=args_file,
            version=version,
        ).param()
        tags["resonate:target"] = invocation.target_address(target or invocation.DEFAULT_GROUP)
    else:
        if args or kwargs or json_args is not None or args_file is not None:
            raise CliError("--arg, --kwarg, --json-args and --args-file need -f FUNC")
        param = payloads.user_value("--promise-param", promise_param, promise_param_file, raw=raw)
        if target is not None:
            tags["resonate:target"] = invocation.target_address(target)
    data: dict[str, Any] = {
        "id": name,
        "cron": cron,
        "promiseId": promise_id,
        "promiseTimeout": payloads.duration("--promise-timeout", promise_timeout),
        "promiseParam": param,
        "promiseTags": tags,
    }
    try:
        session.run("schedule.create", data, output.schedule_answer)
    except ErrorAnswer as err:
        if err.status == 400 and err.message.startswith("Invalid cron expression"):
            # It parsed here, so the server found no firing within its horizon.
            raise CliError(
                f"invalid --cron {cron!r}: the server refused it ({err.message}); "
                "does it ever fire within five years?"
            ) from None
        raise


@schedules.command("next")
@click.argument("name")
@click.option("-n", "count", type=click.IntRange(1, 1000), default=5, show_default=True)
@json_option
@pass_session
def next_(session: Session, name: str, count: int) -> None:
    """Print the next COUNT firings of schedule NAME (computed here from its cron)."""
    answer = session.request("schedule.get", {"id": name})
    schedule = answer.get("schedule") if isinstance(answer, dict) else None
    expr = schedule.get("cron") if isinstance(schedule, dict) else None
    if not isinstance(expr, str):
        raise CliError(f"schedule {name!r} has no cron in the server's answer")
    cron = parse_cron(expr)
    times: list[int] = []
    at: int | None = payloads.now_ms()
    while len(times) < count and at is not None:
        at = cron.next_after(at)
        if at is not None:
            times.append(at)
    session.show(
        {"id": name, "cron": expr, "next": times}, lambda _: output.firings(name, expr, times)
    )


@schedules.command("delete")
@click.argument("id")
@json_option
@pass_session
def delete(session: Session, id: str) -> None:
    """Delete a schedule (promises it created stay)."""
    session.run("schedule.delete", {"id": id}, lambda _: output.done(f"Schedule {id} deleted."))


@schedules.command("search")
@click.option("--tags", help="Only schedules whose promise tags include these (JSON object).")
@paging_options(10)
@json_option
@pass_session
def search(session: Session, tags: str | None, paging: Paging) -> None:
    """List schedules, ordered by id; a page at a time, or --all."""
    data = paging.data()
    if tags is not None:
        data["tags"] = payloads.tags("--tags", tags)
    answer = session.search("schedule.search", data, "schedules", paging.everything)
    session.show(answer, output.schedule_list)
