"""The raw ASGI app (PROTOCOL.md §1.2): routing, ``POST /``, health, legacy 410, CORS.

No framework: the hot path is read body -> ``parse_request`` -> auth -> the runtime's
``Applier`` (runtime/apply.py: prepare, one store transaction, the after-effects on the
background loops) -> encode -> two ``send`` calls.  ``App.serving`` hands the app the parts of
the process ``Runtime`` it uses, and the authenticator (None when auth is off).

Failure policy: bad input is a 4xx from the envelope or the engine; a store that is closing or
whose commit failed answers 503 ``Service unavailable: retry`` (the client retries); any other
exception becomes a 500 envelope.  A connection is never dropped without an answer.  A
WebSocket handshake, on any path, is closed at once (the ASGI server answers it 403): no route
speaks WebSocket.

``sustain.batch`` (docs/decisions.md): the outer token is authenticated once, then every
element runs through the same ``_answer`` as a request sent alone (authorization, the engine,
the failure policy, ``Runtime.after``), all of them concurrently, each in its own store
transaction; the answers go back in one body, in request order.  The elements share one
answer budget (runtime/budget.py): past it, an element answers 413 without running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import msgspec

from sustain.protocol.envelope import (
    BATCH,
    EnvelopeError,
    Request,
    Response,
    encode_batch,
    encode_error,
    encode_response,
    parse_batch,
    parse_request,
    response,
    too_large,
)
from sustain.protocol.errors import ProtocolError
from sustain.runtime.budget import AnswerBudget
from sustain.server import access
from sustain.server.auth import bearer_token
from sustain.server.request_spans import request_tracer, traced
from sustain.server.sse import PollStreams
from sustain.store.errors import CommitError, StoreClosedError, StoreStatementError

if TYPE_CHECKING:
    from sustain.runtime.apply import Applier
    from sustain.runtime.clock import Clock
    from sustain.runtime.config import ServerConfig
    from sustain.runtime.core import Runtime
    from sustain.runtime.metrics import Metrics
    from sustain.server.auth import Authenticator
    from sustain.server.ui import UiRoutes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Claims = dict[str, Any]

log = logging.getLogger(__name__)

JSON = b"application/json"
LEGACY_BODY = b'{"error":"This endpoint is no longer supported. Please update to the latest SDK."}'
LEGACY_ROOTS = ("/promises", "/schedules", "/tasks")
RETRY = "Service unavailable: retry"


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = JSON,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None as soon as it exceeds ``limit`` bytes."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        return body if len(body) <= limit else None
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


class Lifecycle(Protocol):
    """What the lifespan events start and stop: the process runtime's loops and store."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class AppParts(NamedTuple):
    """What the app uses of the process runtime (``App.serving`` picks them out)."""

    applier: Applier  # every operation, alone or in a batch
    clock: Clock  # token expiry
    metrics: Metrics  # request counters and the /metrics text
    polls: PollStreams  # GET /poll/{group}/{id}
    ready: Callable[[], bool]  # /ready: the store answers
    lifecycle: Lifecycle  # the lifespan's start and stop
    ui: Callable[[], UiRoutes]  # built on first use


class App:
    """The ASGI callable served by uvicorn."""

    def __init__(
        self, config: ServerConfig, parts: AppParts, authenticator: Authenticator | None
    ) -> None:
        # Unpacked once: the request path reads plain attributes.
        (self._applier, self._clock, self._metrics_sink, self._polls) = parts[:4]
        (self._ping, self._lifecycle, self._make_ui) = parts[4:]
        self._authenticator = authenticator
        self._limit = config.server.max_body_size
        self._origins = frozenset(config.server.cors.allow_origins)
        self._metrics = parts.metrics.enabled
        self._batch = config.protocol.batch
        self._max_batch = config.limits.max_batch_requests
        self._max_answer = config.limits.max_answer_size
        self._ui: UiRoutes | None = None
        tracer = request_tracer()
        if tracer is not None:  # only then: with tracing off the request path is unchanged
            self._operate = traced(tracer, self._operate)  # type: ignore[method-assign,assignment]

    @classmethod
    def serving(cls, runtime: Runtime, authenticator: Authenticator | None) -> App:
        """The app over ``runtime``'s parts; ``authenticator`` is None when auth is off."""

        def ui() -> UiRoutes:
            # Imported on first use: a server nobody browses never imports the UI.
            from sustain.server.ui import UiRoutes, UiServices  # noqa: PLC0415

            services = UiServices(
                runtime.store, runtime.clock, runtime.registry, runtime.applier, authenticator
            )
            return UiRoutes(services)

        config = runtime.config
        polls = PollStreams(
            runtime.registry, config.transports.http_poll, runtime.clock, authenticator
        )
        parts = AppParts(
            runtime.applier, runtime.clock, runtime.metrics, polls, runtime.store.ping, runtime, ui
        )
        return cls(config, parts, authenticator)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self._origins:
                send = self._with_cors(scope, send)
                if scope["method"] == "OPTIONS" and header(scope, b"origin") is not None:
                    await respond(send, 204, b"", b"text/plain")
                    return
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await _refuse_websocket(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/":
            if method == "POST":
                await self._rpc(scope, receive, send)
            else:
                await respond(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8")
        elif path.startswith("/poll/"):
            await self._polls(scope, receive, send)
        elif path == "/metrics" and self._metrics:
            await self._serve_metrics(scope, send)
        elif path in ("/health", "/ready"):
            if method not in ("GET", "HEAD"):
                await respond(send, 405, b"Method Not Allowed", b"text/plain; charset=utf-8")
            elif path == "/health" or await self._ready():
                await respond(send, 200, b"", b"text/plain")
            else:
                await respond(send, 503, b"", b"text/plain")
        elif path == "/ui" or path.startswith("/ui/") or path == "/workers":
            await self._ui_routes()(scope, receive, send)
        elif any(path == root or path.startswith(root + "/") for root in LEGACY_ROOTS):
            log.warning("legacy REST route %s %s answered 410", method, path)
            await respond(send, 410, LEGACY_BODY)
        else:
            await respond(send, 404, b"Not Found", b"text/plain; charset=utf-8")

    async def _serve_metrics(self, scope: Scope, send: Send) -> None:
        """Prometheus text.  With auth on, only for a token that may read everything (admin
        or prefix ""): the counters are the whole server's, every tenant's traffic in them."""
        text = b"text/plain; charset=utf-8"
        if scope["method"] not in ("GET", "HEAD"):
            await respond(send, 405, b"Method Not Allowed", text)
            return
        authenticator = self._authenticator
        if authenticator is not None:
            token = bearer_token(scope["headers"])
            claims = authenticator.authenticate(token, self._clock.now() / 1000)
            if claims is None:
                await respond(send, 401, b"Unauthorized", text)
                return
            if access.scope_of(claims) != "":
                await respond(send, 403, b"Forbidden", text)
                return
        await self._metrics_sink.refresh()
        body, content_type = self._metrics_sink.exposition()
        await respond(send, 200, body, content_type)

    def _ui_routes(self) -> UiRoutes:
        if self._ui is None:
            self._ui = self._make_ui()
        return self._ui

    async def _ready(self) -> bool:
        try:
            # ping() blocks until the store answers: keep it off the event loop.
            return await asyncio.to_thread(self._ping)
        except Exception:
            log.exception("readiness probe failed")
            return False

    # -- POST / --------------------------------------------------------------------------------

    async def _rpc(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The clock is read only for the duration histogram: with metrics off, not at all.
        started = time.perf_counter() if self._metrics else 0.0
        length = header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self._limit:
            await self._too_large(send)
            return
        body = await read_body(receive, self._limit)
        if body is None:
            await self._too_large(send)
            return
        try:
            request = parse_request(body)
        except EnvelopeError as error:
            await respond(send, error.status, encode_error(error))
            if self._metrics:
                self._metrics_sink.request(error.kind, error.status, time.perf_counter() - started)
            return
        if request.kind == BATCH and self._batch:
            await self._rpc_batch(request, send, started)
            return
        status, payload = _encode(request.kind, request.corr_id, *await self._answer(request))
        await respond(send, status, payload)
        if self._metrics:
            self._metrics_sink.request(request.kind, status, time.perf_counter() - started)

    async def _answer(
        self, request: Request, claims: Claims | None = None, budget: AnswerBudget | None = None
    ) -> tuple[int, Any]:
        """The status and data ``request`` is answered with, whatever happens to it."""
        try:
            return await self._operate(request, claims, budget)
        except ProtocolError as error:
            return error.status, error.message
        except (StoreClosedError, CommitError, StoreStatementError) as exc:
            log.warning("store unavailable for %s: %s", request.kind, exc)
            return 503, RETRY
        except Exception as exc:
            log.exception("operation %s failed", request.kind, extra={"corr_id": request.corr_id})
            return 500, f"Internal error: {exc}"

    async def _operate(
        self, request: Request, claims: Claims | None = None, budget: AnswerBudget | None = None
    ) -> tuple[int, Any]:
        """Authorize and apply one operation.  ``claims`` are the batch's, already
        authenticated; a request sent alone is authenticated here.  ``budget`` is the batch's
        answer budget; a request sent alone has ``limits.max_answer_size`` to itself."""
        authenticator = self._authenticator
        if authenticator is not None:
            if claims is None:
                claims = authenticator.authenticate(request.auth, self._clock.now() / 1000)
                if claims is None:
                    return 401, "Unauthorized"
            if not authenticator.authorize(claims, request.kind, request.data):
                return 403, "Forbidden"
        outcome = await self._applier.apply(request, budget=budget)
        if claims is not None:
            # A tenant's answer keeps only its own promises (a branch's preload is a tag
            # query, and a tag is not an id the request was authorized for).
            return outcome.status, access.redact(access.scope_of(claims) or "", outcome.data)
        return outcome.status, outcome.data

    async def _rpc_batch(self, batch: Request, send: Send, started: float) -> None:
        metrics = self._metrics_sink
        claims: Claims | None = None
        if self._authenticator is not None:
            # Once for the batch (§1.5 step 6 comes before dispatch): a bad token is the
            # whole batch's 401, and the elements are only authorized.
            claims = self._authenticator.authenticate(batch.auth, self._clock.now() / 1000)
            if claims is None:
                await respond(send, 401, encode_response(BATCH, batch.corr_id, 401, "Unauthorized"))
                if self._metrics:
                    metrics.request(BATCH, 401, time.perf_counter() - started)
                return
        try:
            elements = parse_batch(batch, self._max_batch)
        except EnvelopeError as error:
            await respond(send, error.status, encode_error(error))
            if self._metrics:
                metrics.request(BATCH, error.status, time.perf_counter() - started)
            return
        requests = [e for e in elements if isinstance(e, Request)]
        # One task per element, all at once: on SQLite they queue in order for the same group
        # commit, on PostgreSQL each takes its own pooled connection.
        budget = AnswerBudget(self._max_answer)
        answers = iter(await asyncio.gather(*(self._answer(r, claims, budget) for r in requests)))
        responses: list[Response] = []
        for element in elements:
            if isinstance(element, Request):
                status, data = next(answers)
                responses.append(response(element.kind, element.corr_id, status, data))
            else:
                responses.append(
                    response(element.kind, element.corr_id, element.status, element.message)
                )
        try:
            payload = encode_batch(batch.corr_id, responses)
        except Exception:  # some element is unencodable (our bug): only that one is a 500
            alone = [_encode(r.kind, r.head.corrId, r.head.status, r.data)[1] for r in responses]
            payload = encode_batch(batch.corr_id, [msgspec.Raw(p) for p in alone])
        await respond(send, 200, payload)
        if self._metrics:
            # An element's answer leaves with the batch: its duration is the batch's.
            elapsed = time.perf_counter() - started
            for r in responses:
                metrics.request(r.kind, r.head.status, elapsed)
            metrics.request(BATCH, 200, elapsed)

    async def _too_large(self, send: Send) -> None:
        # The unread rest of the body makes the connection unusable: close it after answering.
        await respond(send, 413, too_large(), extra=[(b"connection", b"close")])
        self._metrics_sink.request("unknown", 413, 0.0)

    # -- CORS (PROTOCOL.md §1.2) ---------------------------------------------------------------

    def _with_cors(self, scope: Scope, send: Send) -> Send:
        origin = header(scope, b"origin")
        if origin is None:
            return send
        if "*" in self._origins:
            allowed = b"*"
        elif origin.decode("latin-1") in self._origins:
            allowed = origin
        else:
            return send
        extra = [
            (b"access-control-allow-origin", allowed),
            (b"access-control-allow-methods", b"GET, POST, PUT, PATCH, DELETE, OPTIONS"),
            (
                b"access-control-allow-headers",
                b"Origin, Content-Length, Content-Type, Authorization",
            ),
            (b"vary", b"Origin"),
        ]

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return cors_send

    # -- lifespan ------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._lifecycle.start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._lifecycle.stop()
                except Exception as exc:
                    log.exception("shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _refuse_websocket(receive: Receive, send: Send) -> None:
    """No route speaks WebSocket: close the handshake, which the ASGI server answers with a
    403.  Returning without a word would make it log an error and answer 500."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1008})


def _encode(kind: str, corr_id: str, status: int, data: Any) -> tuple[int, bytes]:
    """The encoded answer and its status; an unencodable result (our bug) is still answered,
    as a 500."""
    try:
        return status, encode_response(kind, corr_id, status, data)
    except Exception as exc:
        log.exception("cannot encode the answer to %s", kind)
        return 500, encode_response(kind, corr_id, 500, f"Internal error: {exc}")
