"""The CLI reference page, generated from the ``sustain`` click commands themselves.

``render()`` walks the command tree of ``sustain.cli.main.sustain`` and writes, for every
command and subcommand, its usage line, its help text and a table of its options (names,
type, default, environment variable, help).  Nothing is written by hand, so the page cannot
drift from the commands.

Used two ways:

* as an MkDocs hook (``hooks:`` in mkdocs.yml): ``on_files`` adds the page ``cli.md`` to the
  site at build time, so ``make docs`` always documents the commands as they are;
* as a script: ``python docs/gen_cli.py`` prints the page (to read it, or diff it).

``tests/docs/test_cli_reference.py`` checks that every command and option appears.
"""

from __future__ import annotations

import html
import inspect
import re
from collections.abc import Iterator
from typing import Any

import click

from sustain.cli.main import sustain

PAGE = "cli.md"
PROG = "sustain"
_ENV_IN_HELP = re.compile(r"\s*\[env ([A-Z0-9_]+)\]")


def _escape(text: str) -> str:
    """Plain text for a Markdown table cell or paragraph (no HTML, no table breaks)."""
    return html.escape(text, quote=False).replace("|", "\\|").replace("*", "\\*")


def walk(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """Every command under ``command`` (itself first), each with its own context, so that
    usage lines and automatic environment variables come out as click computes them."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def root_context() -> click.Context:
    return click.Context(sustain, info_name=PROG, auto_envvar_prefix="SUSTAIN")


def _envvar(param: click.Parameter, ctx: click.Context, help_text: str) -> str:
    """The environment variable that sets ``param``: the one its help names, else the one
    click reads (explicit ``envvar``, or the automatic ``SUSTAIN_<COMMAND>_<OPTION>``)."""
    named = _ENV_IN_HELP.search(help_text)
    if named:
        return named.group(1)
    if isinstance(param, click.Option) and param.envvar:
        envvar = param.envvar
        return ", ".join(envvar) if isinstance(envvar, list | tuple) else str(envvar)
    if (
        isinstance(param, click.Option)
        and param.expose_value  # not --version: click reads no value for it
        and param.allow_from_autoenv
        and ctx.auto_envvar_prefix
        and param.name
    ):
        return f"{ctx.auto_envvar_prefix}_{param.name.upper()}"
    return ""


def _names(option: click.Option) -> str:
    names = [*option.opts, *option.secondary_opts]
    return ", ".join(f"`{name}`" for name in names)


def _type(option: click.Option, ctx: click.Context) -> str:
    if option.is_flag:
        return "flag"
    kind = option.type.get_metavar(option, ctx) or option.type.name.upper()
    if option.multiple:
        kind += " (repeatable)"
    return _escape(kind)


def _default(option: click.Option) -> str:
    default = option.default
    # click 8.3 marks "no default" with a sentinel rather than None
    if option.is_flag or default in (None, ()) or callable(default) or "UNSET" in repr(default):
        return ""
    return f"`{default}`"


def options_table(command: click.Command, ctx: click.Context) -> list[str]:
    options = [p for p in command.params if isinstance(p, click.Option) and not p.hidden]
    if not options:
        return []
    rows = [
        "| option | type | default | environment | meaning |",
        "|---|---|---|---|---|",
    ]
    for option in options:
        help_text = option.help or ""
        env = _envvar(option, ctx, help_text)
        meaning = _ENV_IN_HELP.sub("", help_text).strip()
        if option.required:
            meaning = f"**required.** {meaning}"
        rows.append(
            f"| {_names(option)} | {_type(option, ctx)} | {_default(option)} | "
            f"{f'`{env}`' if env else ''} | {_escape(meaning)} |"
        )
    rows.append("")
    return rows


def arguments_line(command: click.Command) -> list[str]:
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if not arguments:
        return []
    parts = []
    for argument in arguments:
        name = (argument.name or "").upper()
        notes = [] if argument.required else ["optional"]
        if argument.nargs == -1:
            notes.append("any number")
        parts.append(f"`{name}`" + (f" ({', '.join(notes)})" if notes else ""))
    return ["Arguments: " + ", ".join(parts) + ".", ""]


def section(command: click.Command, ctx: click.Context) -> list[str]:
    path = ctx.command_path
    depth = path.count(" ")
    lines = [f"{'#' * min(2 + depth, 4)} `{path}`", ""]
    formatter = ctx.make_formatter()
    command.format_usage(ctx, formatter)
    lines += ["```text", formatter.getvalue().rstrip(), "```", ""]
    help_text = inspect.cleandoc(command.help or "").replace("\b\n", "")
    if help_text:
        lines += [_escape(help_text), ""]
    lines += arguments_line(command)
    lines += options_table(command, ctx)
    if isinstance(command, click.Group):
        subcommands = [
            (name, sub)
            for name in command.list_commands(ctx)
            if (sub := command.get_command(ctx, name)) is not None and not sub.hidden
        ]
        rows = ["| command | what |", "|---|---|"]
        for name, sub in subcommands:
            anchor = f"{path} {name}".replace(" ", "-")
            rows.append(f"| [`{name}`](#{anchor}) | {_escape(sub.get_short_help_str(200))} |")
        lines += [*rows, ""]
    if command.epilog:
        lines += [_escape(inspect.cleandoc(command.epilog)), ""]
    return lines


def render() -> str:
    lines = [
        "# CLI reference",
        "",
        "Generated from the `sustain` command itself when the site is built (`docs/gen_cli.py`",
        "walks its click commands), so it lists exactly the commands, arguments and options",
        "that the installed `sustain` accepts. `sustain COMMAND --help` prints the same.",
        "",
        "Every option can also be given as the environment variable in its table: the global",
        "options and `serve` / `dev` have their own names, the other commands follow click's",
        "`SUSTAIN_<COMMAND>_<OPTION>` scheme. An alias `promise`, `task`, `schedule` runs",
        "`promises`, `tasks`, `schedules`. Durations are written `1h30m`, `45s`, `250ms`.",
        "",
    ]
    for command, ctx in walk(sustain, root_context()):
        lines += section(command, ctx)
    return "\n".join(lines).rstrip() + "\n"


# -- the MkDocs hook --------------------------------------------------------------------------
def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File  # noqa: PLC0415 (only when run as a hook)

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    print(render(), end="")
