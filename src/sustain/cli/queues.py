"""``sustain queues ...``: Sustain's queues (docs/queues.md), the ``sustain.queue.*``
operations.

``create NAME --concurrency 5 --per-key-concurrency 1 --rate 100/min`` creates the queue or
sets its limits (a limit left out is no limit); the limits are checked here first with the
server's own checks, so a mistake is one line and exit 1 before anything is sent.  ``get``
shows what the queue holds now (running, waiting by priority, the rate's next dispatch)
and its counters.
"""

from __future__ import annotations

import click
import msgspec

from sustain.cli import output
from sustain.cli.errors import CliError
from sustain.cli.session import Session, json_option, pass_session, show_command
from sustain.protocol.errors import ProtocolError
from sustain.protocol.queues import QueueCreate, check_create


@click.group("queues")
def queues() -> None:
    """Create, inspect and delete queues (concurrency, per-key and rate limits)."""


@queues.command("create")
@click.argument("name")
@click.option("--concurrency", type=int, help="Tasks of the queue running at once.")
@click.option("--per-key-concurrency", type=int, help="Tasks running at once per sustain:key.")
@click.option("--rate", help="Dispatches per period, smoothed: '100/min', '5/10s'.")
@click.option("--dedup", is_flag=True, help="A call whose key is pending gets that call's result.")
@json_option
@pass_session
def create(
    session: Session, name: str, *, concurrency: int | None, per_key_concurrency: int | None,
    rate: str | None, dedup: bool,
) -> None:  # fmt: skip
    """Create queue NAME, or give it these limits (its tasks and counters stay).

    \\b
    Example:
      sustain queues create payments --concurrency 5 --rate 100/min
    """
    request = QueueCreate(name, concurrency, per_key_concurrency, rate, dedup)
    try:
        check_create(request)
    except ProtocolError as err:
        raise CliError(err.message) from None
    session.run("sustain.queue.create", msgspec.structs.asdict(request), output.queue_answer)


show_command(
    queues, "sustain.queue.get", output.queue_answer,
    "Show queue NAME: limits, running, waiting by priority, counters.", "name",
)  # fmt: skip


@queues.command("list")
@json_option
@pass_session
def list_(session: Session) -> None:
    """List every queue with what it holds now."""
    session.run("sustain.queue.list", {}, output.queue_list)


@queues.command("delete")
@click.argument("name")
@json_option
@pass_session
def delete(session: Session, name: str) -> None:
    """Delete queue NAME: its waiting tasks go out at once, unlimited from now on."""
    session.run(
        "sustain.queue.delete", {"name": name}, lambda _: output.done(f"Queue {name} deleted.")
    )
