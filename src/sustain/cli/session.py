"""The state every client command shares: where the server is, the token, ``--json``.

The root group builds one ``Session``; commands receive it with ``@pass_session`` and call
``session.run(kind, data, render)``, which sends the operation, turns an error answer into
``ErrorAnswer`` and prints the answer's data raw (``--json``) or with ``render``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import click

from sustain.cli import output
from sustain.cli.client import Client
from sustain.cli.errors import ErrorAnswer

F = TypeVar("F", bound=Callable[..., Any])


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
            raise ErrorAnswer(status, message)
        return answer

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


def json_option(func: F) -> F:
    """``--json`` on a leaf command, equivalent to the global ``sustain --json``."""
    return click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the server's answer data as JSON.",
    )(func)
