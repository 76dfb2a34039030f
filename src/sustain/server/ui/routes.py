"""The web UI's ASGI routes (``/ui/...``) and the read-only ``GET /workers`` endpoint.

``App`` hands every path under ``/ui`` and ``/workers`` to ``UiRoutes.__call__``; nothing
here runs on the protocol's hot path.

Auth (when the server has ``auth.publickey``): a browser cannot add an ``Authorization``
header to a link, so ``/ui?token=<JWT>`` checks the token and answers a redirect to the same
page without it, setting the token as an ``HttpOnly; SameSite=Strict`` cookie
(``sustain_token``, path ``/``).  Every later request carries the cookie; scripts and
``curl`` may send ``Authorization: Bearer <JWT>`` instead.  A missing, invalid or expired
token is 401, a token whose claims may not read everything (§7.1: ``role: admin`` or
``prefix: ""``) is 403.  Settling a promise, cancelling an execution and deleting a schedule
are authorized like the API operations they are (``promise.settle`` on its id — for a cancel,
on each id it settles —, ``schedule.delete``).

CSRF: the three writes are ``POST`` forms.  A ``POST`` must carry an ``Origin`` (or, failing
that, ``Referer``) header naming this very host, else it is refused with 403; browsers always
send ``Origin`` on a cross-site form post, and the SameSite=Strict cookie is not sent with one
at all.  Each write also needs a second, explicit confirmation: the first POST answers a page
restating what will happen, whose button posts again with ``confirmed=1``.

Writes go through the runtime's ``Applier`` exactly like the API's (one store transaction,
then the after-effects that wake the loops), so a resolve from the UI wakes a
waiting workflow the same way ``promise.settle`` over HTTP does.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit

import msgspec

from sustain.engine.queue_ops import info as queue_info
from sustain.protocol.addresses import parse_address
from sustain.protocol.cancel import CancelFailed, drive_async, walk
from sustain.protocol.envelope import Request
from sustain.protocol.records import PROMISE_STATES, Promise, PromiseState
from sustain.protocol.tags import TARGET
from sustain.protocol.values import to_base64
from sustain.protocol.versions import pin_of
from sustain.server.app import read_body
from sustain.server.ui import html, queries, views
from sustain.server.ui.queries import Filters
from sustain.server.ui.queues_view import queues_page, queues_table

if TYPE_CHECKING:
    from sustain.server.app import Receive, Scope, Send
    from sustain.server.ui.services import UiServices
    from sustain.store.tx import Tx

log = logging.getLogger(__name__)

T = TypeVar("T")

COOKIE = "sustain_token"
HTML = b"text/html; charset=utf-8"
JSON = b"application/json"
MAX_FORM = 1 << 20
STATIC = {
    "ui.js": b"text/javascript; charset=utf-8",
    "ui.css": b"text/css; charset=utf-8",
}
_NO_STORE = (b"cache-control", b"no-store")
_CSP = (
    b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; frame-ancestors 'none'; form-action 'self'"
)


class Reply:
    """One response: status, body, content type and extra headers."""

    __slots__ = ("body", "content_type", "headers", "status")

    def __init__(
        self,
        status: int,
        body: bytes | str,
        content_type: bytes = HTML,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = headers or []


def redirect(location: str, headers: list[tuple[bytes, bytes]] | None = None) -> Reply:
    return Reply(303, b"", b"text/plain", [(b"location", location.encode()), *(headers or [])])


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _query(scope: Scope) -> dict[str, str]:
    raw = bytes(scope.get("query_string", b"")).decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}


def parse_tags(text: str) -> dict[str, str] | None:
    """``key=value, key2=value2`` → a dict; None when a pair has no ``=``."""
    tags: dict[str, str] = {}
    for raw in text.split(","):
        part = raw.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            return None
        tags[key.strip()] = value.strip()
    return tags


class UiRoutes:
    def __init__(self, services: UiServices) -> None:
        self.rt = services
        self._static: dict[str, bytes] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        try:
            reply = await self._route(scope, receive)
        except Exception:  # a UI page must never take the connection down
            log.exception("UI request %s failed", scope.get("path"))
            reply = Reply(500, html.message_page("Error", "The page could not be built."))
        # The time this server spent on the page (query + HTML), for browsers' devtools and
        # for benchmarks/ui.py, which reads it instead of timing the network too.
        timing = f"app;dur={(time.perf_counter() - started) * 1000:.3f}".encode()
        headers = [
            (b"server-timing", timing),
            (b"content-type", reply.content_type),
            (b"content-length", b"%d" % len(reply.body)),
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            # Nothing but this server's own script; inline style attributes place the bars.
            (b"content-security-policy", _CSP),
            *reply.headers,
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _route(self, scope: Scope, receive: Receive) -> Reply:
        path: str = scope["path"]
        method: str = scope["method"]
        query = _query(scope)
        if path.startswith("/ui/static/"):
            return self._asset(path.removeprefix("/ui/static/"))
        if method not in ("GET", "HEAD", "POST"):
            return Reply(405, b"Method Not Allowed", b"text/plain")
        token_reply = self._token_redirect(scope, query)
        if token_reply is not None:
            return token_reply
        claims, denied = self._authenticate(scope)
        if denied is not None:
            return denied
        if method == "POST":
            if not self._same_origin(scope):
                return Reply(403, html.message_page("Forbidden", "Cross-origin form refused."))
            form = await _read_form(receive)
            if form is None:
                return Reply(413, b"Form too large", b"text/plain")
            if path == "/ui/promise/settle":
                return await self._settle(claims, form)
            if path == "/ui/schedules/delete":
                return await self._delete_schedule(claims, form)
            if path == "/ui/execution/cancel":
                return await self._cancel(claims, form)
            return Reply(404, html.message_page("Not found", path))
        if claims is not None and not self._may_read(claims):
            return Reply(403, html.message_page("Forbidden", "This token may not read the store."))
        fragment = query.get("fragment") == "1"
        if path in ("/ui", "/ui/"):
            return redirect("/ui/executions")
        if path == "/ui/executions":
            return await self._executions(query, fragment)
        if path == "/ui/execution":
            return await self._execution(query.get("id", ""), fragment)
        if path == "/ui/promise":
            return await self._promise(query.get("id", ""))
        if path == "/ui/schedules":
            return await self._schedules(fragment)
        if path == "/ui/queues":
            infos = await self._read(lambda tx: [queue_info(tx, x) for x in tx.all_queues()])
            body = queues_table(infos) if fragment else queues_page(infos)
            return Reply(200, body, headers=[_NO_STORE])
        if path == "/ui/workers":
            workers = await self.workers()
            body = views.workers_table(workers) if fragment else views.workers_page(workers)
            return Reply(200, body, headers=[_NO_STORE])
        if path == "/workers":
            workers = await self.workers()
            return Reply(200, msgspec.json.encode({"workers": workers}), JSON, [_NO_STORE])
        return Reply(404, html.message_page("Not found", f"No page at {path}."))

    # -- auth ------------------------------------------------------------------------------

    def _now_s(self) -> float:
        return self.rt.clock.now() / 1000

    def _token_redirect(self, scope: Scope, query: dict[str, str]) -> Reply | None:
        token = query.get("token")
        if token is None or self.rt.authenticator is None:
            return None
        if self.rt.authenticator.authenticate(token, self._now_s()) is None:
            return Reply(401, html.message_page("Unauthorized", "The token is not valid."))
        rest = {k: v for k, v in query.items() if k != "token"}
        location = scope["path"] + (f"?{urlencode(rest)}" if rest else "")
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
        return redirect(location, [(b"set-cookie", cookie.encode("latin-1"))])

    def _authenticate(self, scope: Scope) -> tuple[dict[str, Any] | None, Reply | None]:
        auth = self.rt.authenticator
        if auth is None:
            return None, None
        token = None
        bearer = _header(scope, b"authorization")
        if bearer is not None and bearer[:7].lower() == "bearer ":
            token = bearer[7:].strip()
        else:
            raw = _header(scope, b"cookie")
            if raw:
                try:
                    jar: SimpleCookie = SimpleCookie(raw)
                except CookieError:
                    jar = SimpleCookie()
                if COOKIE in jar:
                    token = jar[COOKIE].value
        claims = auth.authenticate(token, self._now_s()) if token else None
        if claims is None:
            text = "Open /ui?token=<JWT> once, or send Authorization: Bearer <JWT>."
            return None, Reply(401, html.message_page("Unauthorized", text))
        return claims, None

    def _may_read(self, claims: dict[str, Any]) -> bool:
        auth = self.rt.authenticator
        return auth is None or auth.authorize(claims, "promise.search", {})

    def _may(self, claims: dict[str, Any] | None, kind: str, data: dict[str, Any]) -> bool:
        auth = self.rt.authenticator
        return auth is None or claims is None or auth.authorize(claims, kind, data)

    def _same_origin(self, scope: Scope) -> bool:
        host = _header(scope, b"host")
        source = _header(scope, b"origin") or _header(scope, b"referer")
        if not host or not source or source == "null":
            return False
        return urlsplit(source).netloc == host

    # -- reads -----------------------------------------------------------------------------

    async def _read(self, fn: Callable[[Tx], T]) -> T:
        # A read shows committed rows; nobody acts on it without a write of their own, which
        # is durable, so the answer need not wait for the WAL sync.
        return await self.rt.store.run_async(fn, durable=False)

    async def _executions(self, query: dict[str, str], fragment: bool) -> Reply:
        state = query.get("state") or None
        tags_text = query.get("tags", "")
        tags = parse_tags(tags_text)
        if (state is not None and state not in PROMISE_STATES) or tags is None:
            return Reply(400, html.message_page("Bad filter", "Unknown state or tags syntax."))
        filters = Filters(
            state=state if state is None else _state(state),
            func=query.get("func") or None,
            prefix=query.get("prefix") or None,
            tags=tags,
        )
        cursor = query.get("cursor") or None
        result = await self._read(lambda tx: queries.executions(tx, filters, cursor))
        now = self.rt.clock.now()
        if fragment:
            return Reply(200, views.executions_table(result, filters, tags_text, now))
        return Reply(200, views.executions_page(result, filters, tags_text, cursor, now))

    async def _execution(self, id: str, fragment: bool) -> Reply:
        detail = await self._read(lambda tx: queries.execution(tx, id))
        if detail is None:
            return Reply(404, html.message_page("Not found", f"No promise {id!r}."))
        now = self.rt.clock.now()
        note = self._pin_note(detail.root)
        if fragment:
            return Reply(200, views.execution_body(detail, now, note))
        return Reply(200, views.execution_page(detail, now, note))

    def _pin_note(self, root: Promise) -> str:
        """The version a pending execution is pinned to, and whether a worker serving it is
        connected to its group: if not, it waits (protocol/versions.py)."""
        pin = pin_of(root.tags)
        if pin is None or root.state != "pending":
            return ""
        address = parse_address(root.tags.get(TARGET, ""))
        group = address.group if address is not None else None
        conns = self.rt.registry.connections()
        served = any(conn.group == group and conn.serves(pin) for conn in conns)
        return views.pin_note(pin, group, served)

    async def _promise(self, id: str) -> Reply:
        node = await self._read(lambda tx: queries.promise_with_task(tx, id))
        if node is None:
            return Reply(404, html.message_page("Not found", f"No promise {id!r}."))
        return Reply(200, views.promise_page(node, self.rt.clock.now()))

    async def _schedules(self, fragment: bool) -> Reply:
        rows = await self._read(queries.schedules)
        body = views.schedules_page(rows, self.rt.clock.now())
        if fragment:
            start = body.index("<table")
            body = body[start : body.index("</table>") + len("</table>")]
        return Reply(200, body)

    async def workers(self) -> list[dict[str, Any]]:
        """Open poll connections by (group, pid) and the tasks each pid holds (a lease)."""
        held = await self._read(queries.held_tasks)
        conns: dict[tuple[str, str], int] = {}
        # What each (group, pid) announced it serves (its streams announce the same
        # registry); None: nothing announced (an official SDK worker).
        functions: dict[tuple[str, str], dict[str, list[int]] | None] = {}
        for conn in self.rt.registry.connections():
            key = (conn.group, conn.id)
            conns[key] = conns.get(key, 0) + 1
            announced = conn.announced()
            if announced is not None or key not in functions:
                functions[key] = (
                    None
                    if announced is None
                    else {name: sorted(v) for name, v in sorted(announced.items())}
                )
        return [
            {
                "group": group,
                "pid": pid,
                "connections": count,
                "functions": functions[(group, pid)],
                "tasks": [
                    {"id": t.id, "version": t.version, "leaseExpiresAt": t.timeout_at}
                    for t in held.get(pid, [])
                ],
            }
            for (group, pid), count in sorted(conns.items())
        ]

    # -- writes ----------------------------------------------------------------------------

    async def _apply(self, kind: str, data: dict[str, Any]) -> tuple[int, Any]:
        request = Request(kind, f"ui-{time.monotonic_ns()}", "", None, None, data)
        outcome = await self.rt.applier.apply(request)
        return outcome.status, outcome.data

    async def _settle(self, claims: dict[str, Any] | None, form: dict[str, str]) -> Reply:
        id = form.get("id", "")
        state = form.get("state", "")
        text = form.get("value", "null")
        if state not in ("resolved", "rejected"):
            return Reply(
                400, html.message_page("Bad request", "State must be resolved or rejected.")
            )
        try:
            value = json.loads(text or "null")
        except ValueError as exc:
            return Reply(400, html.message_page("Invalid JSON", f"The value is not JSON: {exc}"))
        if not self._may(claims, "promise.settle", {"id": id}):
            return Reply(403, html.message_page("Forbidden", f"This token may not settle {id!r}."))
        if form.get("confirmed") != "1":
            return Reply(200, views.confirm_settle_page(id, state, text, value))
        data = json.dumps(value, ensure_ascii=False).encode()
        wire = {"headers": {}, "data": to_base64(data)}
        status, answer = await self._apply(
            "promise.settle", {"id": id, "state": state, "value": wire}
        )
        if status != 200:
            return Reply(status, html.message_page("Not settled", f"{status}: {answer}"))
        return redirect(f"/ui/promise?id={html.q(id)}")

    async def _delete_schedule(self, claims: dict[str, Any] | None, form: dict[str, str]) -> Reply:
        id = form.get("id", "")
        if not self._may(claims, "schedule.delete", {"id": id}):
            return Reply(403, html.message_page("Forbidden", f"This token may not delete {id!r}."))
        if form.get("confirmed") != "1":
            return Reply(200, views.confirm_delete_page(id))
        status, answer = await self._apply("schedule.delete", {"id": id})
        if status not in (200, 404):
            return Reply(status, html.message_page("Not deleted", f"{status}: {answer}"))
        return redirect("/ui/schedules")

    async def _cancel(self, claims: dict[str, Any] | None, form: dict[str, str]) -> Reply:
        """Cancel an execution tree (protocol/cancel.py), each of its operations authorized
        like the API's: a token that may not settle one of the promises gets a 403."""
        id = form.get("id", "")
        detached = form.get("detached") == "1"
        if not id:
            return Reply(400, html.message_page("Bad request", "Promise ID is required"))
        if form.get("confirmed") != "1":
            return Reply(200, views.confirm_cancel_page(id, detached))

        async def request(kind: str, data: dict[str, Any]) -> tuple[int, Any]:
            if not self._may(claims, kind, data):
                return 403, "Forbidden"
            status, answer = await self._apply(kind, data)
            return status, msgspec.to_builtins(answer)

        try:
            report = await drive_async(walk(id, detached=detached), request)
        except CancelFailed as exc:
            text = f"{exc.status}: {exc.message}"
            return Reply(exc.status, html.message_page("Not canceled", text))
        if report.noop:
            return Reply(200, html.message_page("Nothing to cancel", report.message()))
        return redirect(f"/ui/execution?id={html.q(id)}")

    # -- static ----------------------------------------------------------------------------

    def _asset(self, name: str) -> Reply:
        content_type = STATIC.get(name)
        if content_type is None:
            return Reply(404, b"Not Found", b"text/plain")
        body = self._static.get(name)
        if body is None:
            body = self._static[name] = (
                resources.files("sustain.server.ui").joinpath("static", name).read_bytes()
            )
        return Reply(200, body, content_type, [(b"cache-control", b"max-age=300")])


def _state(text: str) -> PromiseState:
    for state in PROMISE_STATES:
        if state == text:
            return state
    raise ValueError(text)


async def _read_form(receive: Receive) -> dict[str, str] | None:
    body = await read_body(receive, MAX_FORM)
    if body is None:
        return None
    text = body.decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}
