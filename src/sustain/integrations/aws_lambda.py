"""AWS Lambda: a handler that runs pushed tasks, and the API Gateway plumbing for triggers.

``handler(sustain)`` is the Lambda analogue of ``asgi.app``: the server pushes an execute
message to the function's URL (a Function URL or an API Gateway route), Lambda hands it over
as an event, and the handler runs the task until it completes or suspends before it returns
(Lambda freezes the process as soon as the handler returns).  The event may be an API Gateway
REST (v1) or HTTP API / Function URL (v2) proxy event, whose ``body`` is the message
(``isBase64Encoded`` honoured), or the message itself when the function is invoked directly.

    sustain = Sustain(url=os.environ["SUSTAIN_URL"])
    @sustain.register
    def workflow(ctx, ...): ...
    lambda_handler = aws_lambda.handler(sustain)

``request(event)`` and ``response(status, body)`` are the small pieces an HTTP-triggered
Lambda of your own needs (see ``examples/lambda_trigger``): the method, path and body of a v1
or v2 event, and the proxy response dict with a JSON body.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

from sustain.sdk import serverless

if TYPE_CHECKING:
    from sustain.sdk.client import Sustain

Handler = Callable[[Mapping[str, Any], Any], dict[str, Any]]


@dataclass(frozen=True)
class Request:
    """The HTTP request an API Gateway proxy event describes."""

    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        """The body as JSON (``msgspec.DecodeError`` when it is not)."""
        return msgspec.json.decode(self.body)


def request(event: Mapping[str, Any]) -> Request:
    """Method, path, body and lower-cased headers of a v1 or v2 proxy event."""
    http = (event.get("requestContext") or {}).get("http") or {}
    method = event.get("httpMethod") or http.get("method") or "GET"
    path = event.get("rawPath") or event.get("path") or http.get("path") or "/"
    raw = event.get("body") or ""
    body = raw.encode() if isinstance(raw, str) else bytes(raw)
    if event.get("isBase64Encoded"):
        # A body that is not base64 after all is kept as it came: whoever reads it refuses it.
        with contextlib.suppress(binascii.Error, ValueError):
            body = base64.b64decode(body, validate=True)
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    return Request(str(method).upper(), str(path), body, headers)


def response(status: int, body: Any) -> dict[str, Any]:
    """An API Gateway proxy response with a JSON body."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": msgspec.json.encode(body).decode(),
        "isBase64Encoded": False,
    }


def handler(sustain: Sustain, *, token: str | None = None) -> Handler:
    """A Lambda handler running ``sustain``'s registered functions on push (module doc).
    With ``token=``, an HTTP event must carry ``Authorization: Bearer <token>``."""

    def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        if "kind" in event:  # invoked directly with the message as the event
            outcome = serverless.execute(sustain, event)
            return response(outcome.status, outcome.body())
        req = request(event)
        if req.method != "POST":
            return response(405, {"error": "Method Not Allowed: push with POST"})
        if token is not None and not hmac.compare_digest(
            req.headers.get("authorization", ""), f"Bearer {token}"
        ):
            return response(401, {"error": "Unauthorized: a Bearer token is required"})
        outcome = serverless.execute(sustain, req.body)
        return response(outcome.status, outcome.body())

    return lambda_handler
