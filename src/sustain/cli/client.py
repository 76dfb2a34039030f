"""A small synchronous client of the protocol's single endpoint (``POST /``, PROTOCOL.md §1.4).

The token goes both in ``head.auth`` (what the protocol reads) and in an ``Authorization:
Bearer`` header (what proxies in front of a server may read).  Transport failures become
``ServerUnreachable``; a body that is not a protocol envelope becomes a ``CliError``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, NamedTuple

import httpx

from sustain.cli.errors import CliError, ServerUnreachable
from sustain.protocol.records import VERSION

DEFAULT_SERVER = "http://localhost:8001"

# A 503 answer means a storage race the client should simply retry (PROTOCOL.md §0 item 12).
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)


class Answer(NamedTuple):
    """A response envelope reduced to what the CLI uses."""

    status: int
    data: Any


class Client:
    """Sends one operation per call; reuses one HTTP connection."""

    def __init__(self, server: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.server = server
        self.token = token or None
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(timeout=timeout, headers=headers)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def envelope(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        head: dict[str, Any] = {"corrId": uuid.uuid4().hex, "version": VERSION}
        if self.token:
            head["auth"] = self.token
        return {"kind": kind, "head": head, "data": data}

    def call(self, kind: str, data: dict[str, Any]) -> Answer:
        answer = self._call_once(kind, data)
        for delay in RETRY_DELAYS:
            if answer.status != 503:
                break
            time.sleep(delay)
            answer = self._call_once(kind, data)
        return answer

    def _call_once(self, kind: str, data: dict[str, Any]) -> Answer:
        body = json.dumps(self.envelope(kind, data)).encode()
        try:
            response = self._http.post(
                self.server, content=body, headers={"Content-Type": "application/json"}
            )
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as err:
            raise CliError(f"invalid server URL {self.server!r}: {err}") from err
        except httpx.HTTPError as err:
            reason = str(err) or type(err).__name__
            raise ServerUnreachable(f"cannot reach the server at {self.server}: {reason}") from err
        return self._answer(response)

    def _answer(self, response: httpx.Response) -> Answer:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or "data" not in body:
            raise CliError(
                f"unexpected answer from {self.server} (HTTP {response.status_code}); "
                "is it a Sustain server?"
            )
        head = body.get("head")
        status = head.get("status") if isinstance(head, dict) else None
        if not isinstance(status, int):
            status = response.status_code
        return Answer(status, body["data"])
