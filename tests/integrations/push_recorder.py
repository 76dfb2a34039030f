"""Serve an ASGI app with uvicorn on 127.0.0.1 and record every push it answers.

``python -m tests.integrations.push_recorder module:attr PORT RECORD`` runs ``module.attr``
(e.g. ``examples.chess.app:app``) exactly as ``uvicorn module:attr --port PORT`` would, and
appends one JSON line per answered request to RECORD: ``{"pid", "method", "path", "started",
"seconds", "status", "body"}``.  The tests read what the server's pushes got from outside the
app; a request cut short by SIGKILL leaves no line.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

Message = MutableMapping[str, Any]
App = Callable[[Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
               Awaitable[None]]  # fmt: skip


def recording(app: App, path: str) -> App:
    async def asgi(scope: Message, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.time()
        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")
            await send(message)

        await app(scope, receive, capture)
        try:
            body = json.loads(answer["body"])
        except ValueError:
            body = answer["body"].decode(errors="replace")
        entry = {"pid": os.getpid(), "method": scope["method"], "path": scope["path"],
                 "started": started, "seconds": time.time() - started,
                 "status": answer["status"], "body": body}  # fmt: skip
        _append(path, entry)

    return asgi


def _append(path: str, entry: dict[str, Any]) -> None:
    with open(path, "a") as out:  # one small line: fine to block the loop for it
        out.write(json.dumps(entry) + "\n")


def read(path: Any) -> list[dict[str, Any]]:
    """The recorded requests so far."""
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]
    except FileNotFoundError:
        return []


def main() -> None:
    target, port, record = sys.argv[1:4]
    module, _, attr = target.partition(":")
    app = getattr(importlib.import_module(module), attr or "app")
    uvicorn.run(recording(app, record), host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main()
