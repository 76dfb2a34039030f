"""The ``sustain`` command: the server (``serve``, ``dev``) and a thin protocol client.

Every option is also an environment variable: the globals are ``SUSTAIN_SERVER`` (or
``SUSTAIN_URL``), ``SUSTAIN_TOKEN`` and ``SUSTAIN_JSON``; other options follow click's
``SUSTAIN_<COMMAND>_<OPTION>`` scheme (e.g. ``SUSTAIN_PROMISES_SEARCH_LIMIT``).
Exit codes are listed in ``sustain.cli.errors``.

``serve`` and ``dev`` are imported only when used (or listed by ``--help``), so that the
client commands start fast and keep working if the server's dependencies are broken.
"""

from __future__ import annotations

import importlib

import click

from sustain.cli.cancel import cancel
from sustain.cli.check import check
from sustain.cli.client import DEFAULT_SERVER
from sustain.cli.errors import CliError
from sustain.cli.export import export
from sustain.cli.invoke import invoke
from sustain.cli.migrate import migrate
from sustain.cli.promises import promises
from sustain.cli.queues import queues
from sustain.cli.retry import retry
from sustain.cli.schedules import schedules
from sustain.cli.session import Session
from sustain.cli.tasks import tasks
from sustain.cli.tree import tree
from sustain.cli.worker import worker

SERVER_COMMANDS = ("serve", "dev")
ALIASES = {"promise": "promises", "task": "tasks", "schedule": "schedules", "queue": "queues"}


def _server_command(name: str) -> click.Command | None:
    try:
        module = importlib.import_module("sustain.cli.serve")
    except ImportError:
        return None
    command = getattr(module, name, None)
    return command if isinstance(command, click.Command) else None


class SustainGroup(click.Group):
    """Adds the lazily imported server commands and the singular aliases."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(super().list_commands(ctx))
        names.update(n for n in SERVER_COMMANDS if _server_command(n) is not None)
        return sorted(names)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # An alias runs under the canonical name, so its env vars are SUSTAIN_PROMISES_...
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command is not None else name), command, rest

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name in SERVER_COMMANDS:
            command = _server_command(name)
            if command is None:
                raise CliError(f"'{name}' is unavailable: sustain.cli.serve cannot be imported")
            return command
        return super().get_command(ctx, name)


@click.group(
    cls=SustainGroup,
    context_settings={"auto_envvar_prefix": "SUSTAIN"},
    epilog="Exit codes: 0 success, 1 error answer or invalid value, 2 usage error, "
    "3 server unreachable.  Every option is also an environment variable "
    "SUSTAIN_<COMMAND>_<OPTION>.",
)
@click.option(
    "-S",
    "--server",
    envvar=["SUSTAIN_SERVER", "SUSTAIN_URL"],
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    help="URL of the Sustain server.",
)
@click.option("-T", "--token", envvar="SUSTAIN_TOKEN", show_envvar=True, help="JWT to send.")
@click.option(
    "--json", "as_json", is_flag=True, envvar="SUSTAIN_JSON", help="Print answers as JSON."
)
@click.version_option(package_name="sustain", prog_name="sustain")
@click.pass_context
def sustain(ctx: click.Context, server: str, token: str | None, as_json: bool) -> None:
    """Sustain: durable execution on durable promises."""
    session = Session(server, token, as_json)
    ctx.obj = session
    ctx.call_on_close(session.close)


sustain.add_command(promises)
sustain.add_command(tasks)
sustain.add_command(schedules)
sustain.add_command(queues)
sustain.add_command(invoke)
sustain.add_command(tree)
sustain.add_command(cancel)
sustain.add_command(retry)
sustain.add_command(worker)
sustain.add_command(migrate)
sustain.add_command(export)
sustain.add_command(check)


def main() -> None:
    sustain(prog_name="sustain")
