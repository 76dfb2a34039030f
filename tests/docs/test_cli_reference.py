"""The generated CLI reference (docs/gen_cli.py) covers every command and option.

The page is generated from the click commands when the site is built, so it cannot drift;
this test walks the command tree independently and checks that every command has its section
with its usage line, and every option and argument appears in it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import click
from click.testing import CliRunner

from sustain.cli.main import sustain

ROOT = Path(__file__).resolve().parents[2]


def gen_cli() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli", ROOT / "docs" / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def commands(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = f"{ctx.command_path} {name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            sub = click.Context(command, info_name=name, parent=ctx)
            found += commands(command, sub)
    return found


def sections(page: str) -> dict[str, str]:
    """The page's text under each command heading, by command path."""
    out: dict[str, str] = {}
    current = ""
    for line in page.splitlines():
        if line.startswith("#") and line.rstrip().endswith("`") and "`sustain" in line:
            current = line.split("`")[1]
            out[current] = ""
        elif current:
            out[current] += line + "\n"
    return out


def test_every_command_and_option_is_on_the_page() -> None:
    page = gen_cli().render()
    root = click.Context(sustain, info_name="sustain", auto_envvar_prefix="SUSTAIN")
    by_path = sections(page)
    everything = [("sustain", sustain), *commands(sustain, root)]
    assert set(by_path) == {path for path, _ in everything}
    assert len(everything) > 30  # serve, dev, worker, and the promises/tasks/schedules trees
    for path, command in everything:
        text = by_path[path]
        assert f"Usage: {path}" in text, path
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                for name in [*param.opts, *param.secondary_opts]:
                    assert f"`{name}`" in text, f"{path}: {name}"
            elif isinstance(param, click.Argument):
                assert f"`{(param.name or '').upper()}`" in text, f"{path}: {param.name}"


def test_the_usage_lines_are_the_commands_own() -> None:
    """What the page shows as usage is what ``--help`` prints."""
    page = gen_cli().render()
    runner = CliRunner()
    for argv in (["serve"], ["promises", "create"], ["tasks", "claim"], ["worker"]):
        shown = runner.invoke(sustain, [*argv, "--help"], prog_name="sustain").output
        usage = " ".join(shown.split("\n\n")[0].split())
        assert usage in " ".join(page.split()), usage
