"""The state every client command shares: where the server is, the token, ``--json``.

The root group builds one ``Session``; commands receive it with ``@pass_session`` and call
``session.run(kind, data, render)``, which sends the operation, turns an error answer into
``ErrorAnswer`` and prints the answer's data raw (``--json``) or with ``render``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Collection
from typing import Any, NamedTuple, TypeVar, cast

import click

from sustain.cli import output
from sustain.cli.client import Client
from sustain.cli.errors import ErrorAnswer

F = TypeVar("F", bound=Callable[..., Any])

MAX_PAGES = 10_000  # --all: a guard against a server that never ends a search


class Session:
    def __init__(self, server: str, token: str | None, as_json: bool) -> None:
        self.server = server
        self.token = token
        self.as_json = as_json
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(self.server, self.token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def request(self, kind: str, data: dict[str, Any], ok: Collection[int] = (200,)) -> Any:
        """The answer's data for an ``ok`` status; ``ErrorAnswer`` otherwise."""
        status, answer = self.client.call(kind, data)
        if status not in ok:
            message = answer if isinstance(answer, str) else f"HTTP {status}: {answer}"
            subject = data.get("id")
            # The catalogue's messages name no id ("Promise not found", "Task is in an invalid
            # state"): say which one.  Other errors are about the request, not the record.
            if status in (404, 409) and isinstance(subject, str) and subject not in message:
                message = f"{message}: {subject}"
            raise ErrorAnswer(status, message)
        return answer

    def search(self, kind: str, data: dict[str, Any], key: str, everything: bool) -> Any:
        """One page of a search, or with ``everything`` every page merged (no cursor left)."""
        answer = self.request(kind, data)
        if not everything:
            return answer
        items = list(answer.get(key) or []) if isinstance(answer, dict) else []
        cursor = answer.get("cursor") if isinstance(answer, dict) else None
        for _ in range(MAX_PAGES):
            if not isinstance(cursor, str):
                break
            page = self.request(kind, {**data, "cursor": cursor})
            items.extend(page.get(key) or [] if isinstance(page, dict) else [])
            next_cursor = page.get("cursor") if isinstance(page, dict) else None
            # A server that hands back the same cursor would loop forever.
            cursor = next_cursor if next_cursor != cursor else None
        return {key: items}

    def show(self, data: Any, render: Callable[[Any], None]) -> None:
        if self.as_json:
            output.raw_json(data)
        else:
            render(data)

    def run(
        self,
        kind: str,
        data: dict[str, Any],
        render: Callable[[Any], None],
        ok: Collection[int] = (200,),
    ) -> Any:
        answer = self.request(kind, data, ok)
        self.show(answer, render)
        return answer


pass_session = click.make_pass_decorator(Session)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        session = ctx.find_object(Session)
        if session is not None:
            session.as_json = True


def _set_all_tags(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        output.settings.all_tags = True


def _setting(name: str, callback: Callable[..., None], help: str, envvar: str | None = None
             ) -> Callable[[F], F]:  # fmt: skip
    """A flag that sets something on the session and is not passed to the command."""
    return click.option(
        name, is_flag=True, expose_value=False, callback=callback, envvar=envvar, help=help
    )


def all_tags_option(func: F) -> F:
    """``--all-tags``: show the SDKs' ``resonate:*`` tags too (hidden by default)."""
    help = "Show the resonate:* tags the SDKs set (hidden by default)."
    return _setting("--all-tags", _set_all_tags, help, "SUSTAIN_ALL_TAGS")(func)


def json_option(func: F) -> F:
    """``--json`` on a leaf command, equivalent to the global ``sustain --json``."""
    return _setting("--json", _set_json, "Print the server's answer data as JSON.")(func)


def show_command(
    group: click.Group, kind: str, render: Callable[[Any], None], doc: str, key: str = "id",
    *, all_tags: bool = False,
) -> None:  # fmt: skip
    """Add ``<group> get KEY``: one ``kind`` request for ``{key: KEY}``, drawn by ``render``
    (``--json`` prints the answer's data; ``all_tags`` adds ``--all-tags``)."""

    def get(session: Session, /, **params: str) -> None:
        session.run(kind, params, render)

    get.__doc__ = doc
    command = json_option(pass_session(get))
    if all_tags:
        command = all_tags_option(command)
    group.command("get")(click.argument(key)(command))


class Paging(NamedTuple):
    """A search's ``--limit``, ``--cursor`` and ``--all``."""

    limit: int
    cursor: str | None
    everything: bool

    def data(self) -> dict[str, Any]:
        """The request's paging fields (a search command adds its filters)."""
        data: dict[str, Any] = {"limit": self.limit}
        if self.cursor is not None:
            data["cursor"] = self.cursor
        return data


def paging_options(default_limit: int) -> Callable[[F], F]:
    """``--limit``, ``--cursor`` and ``--all`` on a search command, given to it as one
    ``paging: Paging`` argument."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(
            *args: Any, limit: int, cursor: str | None, everything: bool, **kwargs: Any
        ) -> Any:
            return func(*args, paging=Paging(limit, cursor, everything), **kwargs)

        for option in (
            click.option(
                "--all", "everything", is_flag=True, help="Fetch every page, not just one."
            ),
            click.option("--cursor", help="Continue a previous search (the cursor it printed)."),
            click.option(
                "--limit", type=click.IntRange(1, 1000), default=default_limit, show_default=True
            ),
        ):
            command = option(command)
        return cast(F, command)

    return decorate
