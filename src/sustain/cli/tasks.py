"""``sustain tasks ...``: the task operations (PROTOCOL.md §2.7-2.17, §7.3).

Actions (``--action``, ``--actions``) are JSON objects ``{kind, head, data}``; ``kind`` and
``head`` may be left out (the op's natural kind and ``{}`` are filled in), and an object
without ``data`` and ``kind`` is taken as the action's data itself.
"""

from __future__ import annotations

import click

from sustain.cli import output, payloads
from sustain.cli.errors import CliError
from sustain.cli.promises import value_options
from sustain.cli.session import (
    Paging,
    Session,
    json_option,
    paging_options,
    pass_session,
    show_command,
)
from sustain.protocol.records import TASK_STATES

DEFAULT_TARGET = "poll://any@default"

version_option = click.option(
    "--version", "version", type=click.IntRange(min=0), required=True, help="The task version."
)


@click.group("tasks")
def tasks() -> None:
    """Create, claim, complete and inspect tasks."""


show_command(tasks, "task.get", output.task_answer, "Show one task.")


@tasks.command("create")
@click.argument("id")
@click.option("--pid", required=True, help="The process id that holds the new task.")
@click.option("--ttl", required=True, help="Lease duration, e.g. 1m.")
@click.option("-t", "--timeout", required=True, help="Time until the promise times out.")
@value_options("param", "param")
@click.option("--tags", help="Tags as a JSON object of strings.")
@click.option("--target", help=f"resonate:target when --tags has none [default: {DEFAULT_TARGET}]")
@json_option
@pass_session
def create(
    session: Session,
    *,
    id: str,
    pid: str,
    ttl: str,
    timeout: str,
    param: str | None,
    param_file: str | None,
    raw: bool,
    tags: str | None,
    target: str | None,
) -> None:
    """Create a promise with its task, already claimed by PID."""
    promise_tags = payloads.tags("--tags", tags)
    if target is not None or "resonate:target" not in promise_tags:
        promise_tags["resonate:target"] = target or DEFAULT_TARGET
    action = {
        "kind": "promise.create",
        "head": {},
        "data": {
            "id": id,
            "timeoutAt": payloads.now_ms() + payloads.duration("--timeout", timeout),
            "param": payloads.user_value("--param", param, param_file, raw=raw),
            "tags": promise_tags,
        },
    }
    data = {"pid": pid, "ttl": payloads.duration("--ttl", ttl), "action": action}
    session.run("task.create", data, output.task_answer)


@tasks.command("claim")
@click.argument("id")
@click.option("--pid", required=True, help="The claiming process id.")
@version_option
@click.option("--ttl", required=True, help="Lease duration, e.g. 1m.")
@json_option
@pass_session
def claim(session: Session, id: str, pid: str, version: int, ttl: str) -> None:
    """Acquire a pending task (task.acquire)."""
    data = {"id": id, "version": version, "pid": pid, "ttl": payloads.duration("--ttl", ttl)}
    session.run("task.acquire", data, output.task_answer)


@tasks.command("fence")
@click.argument("id")
@version_option
@click.option("--action", required=True, help="promise.create or promise.settle action (JSON).")
@json_option
@pass_session
def fence(session: Session, id: str, version: int, action: str) -> None:
    """Run a promise operation only while holding the task's lease."""
    raw = payloads.json_object("--action", action)
    if "kind" not in raw:
        raise CliError("--action needs a 'kind': promise.create or promise.settle")
    data = {"id": id, "version": version, "action": payloads.action("--action", action, "")}
    session.run("task.fence", data, output.fence_answer)


@tasks.command("heartbeat")
@click.option("--pid", required=True, help="The process id holding the leases.")
@click.option(
    "--tasks", "task_refs", required=True, help='JSON array [{"id": ..., "version": ...}].'
)
@json_option
@pass_session
def heartbeat(session: Session, pid: str, task_refs: str) -> None:
    """Extend the leases of tasks held by PID."""
    data = {"pid": pid, "tasks": payloads.json_array("--tasks", task_refs)}
    session.run("task.heartbeat", data, lambda _: output.done("Heartbeat sent."))


@tasks.command("suspend")
@click.argument("id")
@version_option
@click.option("--actions", required=True, help='JSON array of {"awaited": ..., "awaiter": ID}.')
@json_option
@pass_session
def suspend(session: Session, id: str, version: int, actions: str) -> None:
    """Suspend a task until its awaited promises settle.

    When one of them is already settled the server answers 300 and the task stays
    acquired: the preload is printed and the exit code is 0.
    """
    items = payloads.actions("--actions", actions, "promise.register_callback")
    answer = session.request(
        "task.suspend", {"id": id, "version": version, "actions": items}, ok=(200, 300)
    )
    settled = isinstance(answer, dict) and "preload" in answer
    session.show(answer, output.resume_now if settled else output.suspended)


@tasks.command("complete")
@click.argument("id")
@version_option
@click.option(
    "--action", required=True, help='promise.settle action, e.g. {"id": ..., "state": "resolved"}.'
)
@json_option
@pass_session
def complete(session: Session, id: str, version: int, action: str) -> None:
    """Fulfill an acquired task, settling its promise (task.fulfill)."""
    data = {
        "id": id,
        "version": version,
        "action": payloads.action("--action", action, "promise.settle"),
    }
    session.run("task.fulfill", data, output.promise_answer)


@tasks.command("release")
@click.argument("id")
@version_option
@json_option
@pass_session
def release(session: Session, id: str, version: int) -> None:
    """Give an acquired task back (it is redelivered)."""
    session.run(
        "task.release",
        {"id": id, "version": version},
        lambda _: output.done(f"Task {id} released."),
    )


@tasks.command("halt")
@click.argument("id")
@json_option
@pass_session
def halt(session: Session, id: str) -> None:
    """Stop a task until it is continued."""
    session.run("task.halt", {"id": id}, lambda _: output.done(f"Task {id} halted."))


@tasks.command("continue")
@click.argument("id")
@json_option
@pass_session
def continue_(session: Session, id: str) -> None:
    """Make a halted task pending again."""
    session.run("task.continue", {"id": id}, lambda _: output.done(f"Task {id} continued."))


@tasks.command("search")
@click.option("--state", type=click.Choice(TASK_STATES), help="Only tasks in this state.")
@paging_options(100)
@json_option
@pass_session
def search(session: Session, state: str | None, paging: Paging) -> None:
    """List tasks by state, ordered by id; a page at a time, or --all."""
    data = paging.data()
    if state is not None:
        data["state"] = state
    answer = session.search("task.search", data, "tasks", paging.everything)
    session.show(answer, output.task_list)
