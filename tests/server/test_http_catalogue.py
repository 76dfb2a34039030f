"""Every message of the error catalogue (PROTOCOL.md §11, §2), over real HTTP.

Each case sets up what it needs with ordinary requests, sends the one request that must
fail, and checks the HTTP status, ``head.status`` and the exact message.  Ids are unique per
case, so the cases share one server.  Envelope-level messages, auth (401/403) and 413 are
covered in test_http_routes.py and test_http_auth.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.servers import ServerProcess, unique

FAR = 2**53
Setup = Callable[[ServerProcess, str], None]


def target(id: str, **tags: str) -> dict[str, Any]:
    return {"id": id, "timeoutAt": FAR, "tags": {"resonate:target": "poll://any@g", **tags}}


def create(*promises: dict[str, Any]) -> Setup:
    def setup(server: ServerProcess, _: str) -> None:
        for p in promises:
            server.ok("promise.create", p)

    return setup


def _acquired(server: ServerProcess, id: str) -> None:
    server.ok("task.create", {"pid": "w", "ttl": 60_000,
                              "action": {"kind": "promise.create", "head": {},
                                         "data": target(id)}})


def _settled(server: ServerProcess, id: str) -> None:
    server.ok("promise.create", target(id))
    server.ok("promise.settle", {"id": id, "state": "resolved"})


def _plain(server: ServerProcess, id: str) -> None:
    server.ok("promise.create", {"id": id, "timeoutAt": FAR})


def _plain_with_child(server: ServerProcess, id: str) -> None:
    _plain(server, id)
    _plain(server, id + ".1")


def _pending_task(server: ServerProcess, id: str) -> None:
    server.ok("promise.create", target(id))


def nothing(server: ServerProcess, id: str) -> None:
    del server, id


def callback(awaited: str, awaiter: str) -> dict[str, Any]:
    return {"kind": "promise.register_callback", "head": {},
            "data": {"awaited": awaited, "awaiter": awaiter}}


# (name, setup, kind, data built from the case's unique id X, status, message or prefix)
Case = tuple[str, Setup, str, Callable[[str], dict[str, Any]], int, str]
CASES: list[Case] = [
    # -- parsing ---------------------------------------------------------------------------
    ("parse", nothing, "promise.get", lambda x: {}, 400, "Invalid request: "),
    ("parse-type", nothing, "promise.create", lambda x: {"id": x, "timeoutAt": 1.5}, 400,
     "Invalid request: "),
    ("fence-action-data", nothing, "task.fence",
     lambda x: {"id": x, "version": 0, "action": {"kind": "promise.create", "data": {"id": "y"}}},
     400, "Invalid action data: "),
    ("fence-kind", nothing, "task.fence",
     lambda x: {"id": x, "version": 0, "action": {"kind": "promise.get", "data": {"id": x + ".1"}}},
     400, "Invalid fence action kind"),
    # -- promise.create / promise.get ------------------------------------------------------
    ("id-required", nothing, "promise.get", lambda x: {"id": ""}, 400, "Promise ID is required"),
    ("id-nul", nothing, "promise.create", lambda x: {"id": "a\x00b", "timeoutAt": 1}, 400,
     "Promise ID must not contain null bytes"),
    ("timeout-negative", nothing, "promise.create", lambda x: {"id": x, "timeoutAt": -1}, 400,
     "TimeoutAt must be a non-negative integer"),
    ("origin-prefix", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:origin": "other"}}, 400,
     "Promise ID must be prefixed by resonate:origin"),
    ("branch-prefix", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:branch": "other"}}, 400,
     "Promise ID must be prefixed by resonate:branch"),
    ("parent-prefix", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:parent": "other"}}, 400,
     "Promise ID must be prefixed by resonate:parent"),
    ("prefix-dot", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:prefix": "a.b"}}, 400,
     "resonate:prefix must not contain '.'"),
    ("delay-integer", nothing, "promise.create",
     lambda x: target(x, **{"resonate:delay": "soon"}), 400,
     "resonate:delay must be a non-negative integer"),
    ("delay-before-timeout", nothing, "promise.create",
     lambda x: {**target(x, **{"resonate:delay": "10"}), "timeoutAt": 5}, 400,
     "resonate:delay must be less than timeoutAt"),
    ("delay-needs-target", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:delay": "10"}}, 400,
     "resonate:delay requires a resonate:target tag"),
    ("bad-target", nothing, "promise.create",
     lambda x: {"id": x, "timeoutAt": FAR, "tags": {"resonate:target": "nowhere"}}, 400,
     "Invalid resonate:target address"),
    ("promise-missing", nothing, "promise.get", lambda x: {"id": x}, 404, "Promise not found"),
    ("settle-missing", nothing, "promise.settle", lambda x: {"id": x, "state": "resolved"}, 404,
     "Promise not found"),
    # -- callbacks, listeners, search ------------------------------------------------------
    ("awaited-required", nothing, "promise.register_callback",
     lambda x: {"awaited": "", "awaiter": x}, 400, "Awaited promise ID is required"),
    ("awaiter-required", nothing, "promise.register_callback",
     lambda x: {"awaited": x, "awaiter": ""}, 400, "Awaiter promise ID is required"),
    ("callback-same", nothing, "promise.register_callback",
     lambda x: {"awaited": x, "awaiter": x}, 400, "Awaited and awaiter must be different promises"),
    ("callback-origin", nothing, "promise.register_callback",
     lambda x: {"awaited": x, "awaiter": "elsewhere"}, 400,
     "Awaiter and awaited must belong to the same origin"),
    ("awaited-missing", nothing, "promise.register_callback",
     lambda x: {"awaited": x + ".1", "awaiter": x}, 404, "Awaited promise not found"),
    ("awaiter-missing", lambda s, x: _plain(s, x + ".1"), "promise.register_callback",
     lambda x: {"awaited": x + ".1", "awaiter": x}, 422, "Awaiter promise not found"),
    ("awaiter-no-target", _plain_with_child,
     "promise.register_callback", lambda x: {"awaited": x + ".1", "awaiter": x}, 422,
     "Awaiter promise has no resonate:target tag"),
    ("listener-address-required", nothing, "promise.register_listener",
     lambda x: {"awaited": x, "address": ""}, 400, "Address is required"),
    ("listener-address", nothing, "promise.register_listener",
     lambda x: {"awaited": x, "address": "nowhere"}, 400, "Invalid listener address"),
    ("listener-missing", nothing, "promise.register_listener",
     lambda x: {"awaited": x, "address": "poll://uni@g/w"}, 404, "Awaited promise not found"),
    ("limit-zero", nothing, "promise.search", lambda x: {"limit": 0}, 400,
     "Limit must be a positive integer"),
    ("limit-large", nothing, "task.search", lambda x: {"limit": 1001}, 400,
     "Invalid 'limit' — must be between 1 and 1000"),
    # -- tasks -----------------------------------------------------------------------------
    ("task-id-required", nothing, "task.get", lambda x: {"id": ""}, 400, "Task ID is required"),
    ("task-missing", nothing, "task.get", lambda x: {"id": x}, 404, "Task not found"),
    ("pid-required", nothing, "task.create",
     lambda x: {"pid": "", "ttl": 1, "action": {"kind": "promise.create", "head": {},
                                                "data": target(x)}},
     400, "Process ID is required"),
    ("ttl-positive", nothing, "task.create",
     lambda x: {"pid": "w", "ttl": 0, "action": {"kind": "promise.create", "head": {},
                                                 "data": target(x)}},
     400, "TTL must be a positive integer"),
    ("create-needs-target", nothing, "task.create",
     lambda x: {"pid": "w", "ttl": 1, "action": {"kind": "promise.create", "head": {},
                                                 "data": {"id": x, "timeoutAt": FAR}}},
     400, "Action must have a resonate:target tag"),
    ("create-no-delay", nothing, "task.create",
     lambda x: {"pid": "w", "ttl": 1, "action": {"kind": "promise.create", "head": {},
                                                 "data": target(x, **{"resonate:delay": "1"})}},
     400, "Action must not have a resonate:delay tag"),
    ("create-bad-target", nothing, "task.create",
     lambda x: {"pid": "w", "ttl": 1, "action": {
         "kind": "promise.create", "head": {},
         "data": {"id": x, "timeoutAt": FAR, "tags": {"resonate:target": "nowhere"}}}},
     400, "Invalid resonate:target address"),
    ("create-exists", _acquired, "task.create",
     lambda x: {"pid": "w", "ttl": 1, "action": {"kind": "promise.create", "head": {},
                                                 "data": target(x)}},
     409, "Already exists"),
    ("create-no-task", _plain, "task.create",
     lambda x: {"pid": "w", "ttl": 1, "action": {"kind": "promise.create", "head": {},
                                                 "data": target(x)}},
     422, "The promise does not have a resonate:target tag"),
    ("version-negative", nothing, "task.acquire",
     lambda x: {"id": x, "version": -1, "pid": "w", "ttl": 1}, 400,
     "Version must be a non-negative integer"),
    ("acquire-not-pending", _acquired, "task.acquire",
     lambda x: {"id": x, "version": 1, "pid": "w", "ttl": 1}, 409, "Task is not pending"),
    ("acquire-version", _pending_task, "task.acquire",
     lambda x: {"id": x, "version": 5, "pid": "w", "ttl": 1}, 409, "Version mismatch"),
    ("release-state", _pending_task, "task.release", lambda x: {"id": x, "version": 0}, 409,
     "Task version mismatch or invalid state"),
    ("fulfill-id", nothing, "task.fulfill",
     lambda x: {"id": x, "version": 0, "action": {"kind": "promise.settle", "head": {},
                                                  "data": {"id": "y", "state": "resolved"}}},
     400, "Action ID must match the task ID"),
    ("fulfill-state", _pending_task, "task.fulfill",
     lambda x: {"id": x, "version": 0, "action": {"kind": "promise.settle", "head": {},
                                                  "data": {"id": x, "state": "resolved"}}},
     409, "Task version mismatch or invalid state"),
    ("suspend-empty", nothing, "task.suspend", lambda x: {"id": x, "version": 0, "actions": []},
     400, "Actions array cannot be empty"),
    ("suspend-awaiter", nothing, "task.suspend",
     lambda x: {"id": x, "version": 0, "actions": [callback(x + ".1", x + ".2")]}, 400,
     "All action awaiter IDs must match the task ID"),
    ("suspend-state", _pending_task, "task.suspend",
     lambda x: {"id": x, "version": 0, "actions": [callback(x + ".1", x)]}, 409,
     "Task is not acquired or version mismatch"),
    ("suspend-awaited-missing", _acquired, "task.suspend",
     lambda x: {"id": x, "version": 1, "actions": [callback(x + ".1", x)]}, 422,
     "Awaited promise not found"),
    ("fence-self", nothing, "task.fence",
     lambda x: {"id": x, "version": 0,
                "action": {"kind": "promise.settle", "data": {"id": x, "state": "resolved"}}},
     400, "Action ID must not equal the task ID"),
    ("fence-version", _pending_task, "task.fence",
     lambda x: {"id": x, "version": 0,
                "action": {"kind": "promise.create", "data": {"id": x + ".1", "timeoutAt": FAR}}},
     409, "Version mismatch"),
    ("fence-missing", nothing, "task.fence",
     lambda x: {"id": x, "version": 0,
                "action": {"kind": "promise.create", "data": {"id": x + ".1", "timeoutAt": FAR}}},
     404, "Task not found"),
    ("heartbeat-pid", nothing, "task.heartbeat",
     lambda x: {"pid": "", "tasks": [{"id": x, "version": 1}]}, 400, "Process ID is required"),
    ("heartbeat-empty", nothing, "task.heartbeat", lambda x: {"pid": "w", "tasks": []}, 400,
     "Tasks array must not be empty"),
    ("halt-fulfilled", _settled, "task.halt", lambda x: {"id": x}, 409, "Task is fulfilled"),
    ("continue-not-halted", _pending_task, "task.continue", lambda x: {"id": x}, 409,
     "Task is not halted"),
    # -- schedules -------------------------------------------------------------------------
    ("schedule-id", nothing, "schedule.get", lambda x: {"id": ""}, 400, "Schedule ID is required"),
    ("schedule-missing", nothing, "schedule.delete", lambda x: {"id": x}, 404,
     "Schedule not found"),
    ("cron-required", nothing, "schedule.create",
     lambda x: {"id": x, "cron": "", "promiseId": "p", "promiseTimeout": 1,
                "promiseTags": {"resonate:target": "poll://any@g"}},
     400, "Cron expression is required"),
    ("cron-invalid", nothing, "schedule.create",
     lambda x: {"id": x, "cron": "61 * * * *", "promiseId": "p", "promiseTimeout": 1,
                "promiseTags": {"resonate:target": "poll://any@g"}},
     400, "Invalid cron expression"),
    ("template-required", nothing, "schedule.create",
     lambda x: {"id": x, "cron": "* * * * *", "promiseId": "", "promiseTimeout": 1,
                "promiseTags": {"resonate:target": "poll://any@g"}},
     400, "Promise ID template is required"),
    ("promise-timeout", nothing, "schedule.create",
     lambda x: {"id": x, "cron": "* * * * *", "promiseId": "p", "promiseTimeout": -1,
                "promiseTags": {"resonate:target": "poll://any@g"}},
     400, "Promise timeout must be a non-negative integer"),
    ("schedule-target", nothing, "schedule.create",
     lambda x: {"id": x, "cron": "* * * * *", "promiseId": "p", "promiseTimeout": 1}, 400,
     "promiseTags must include a resonate:target tag"),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_catalogue_message(debug_server: ServerProcess, case: Case) -> None:
    _, setup, kind, data, status, message = case
    x = unique("cat")
    setup(debug_server, x)
    answer = debug_server.rpc(kind, data(x))
    assert (answer.status, answer.head_status) == (status, status), answer
    assert isinstance(answer.data, str)
    if message.endswith(": "):
        assert answer.data.startswith(message), answer.data
    else:
        assert answer.data == message


def test_debug_tick_messages(debug_server: ServerProcess) -> None:
    missing = debug_server.rpc("debug.tick", {})
    assert (missing.status, missing.data) == (400, "Missing or invalid 'time' field")
    other = debug_server.rpc("debug.tick", {"time": 5}, **{"resonate:debug_time": 6})
    assert (other.status, other.data) == (400, "resonate:debug_time must equal data.time")


def test_debug_operations_disabled_without_debug(server: ServerProcess) -> None:
    for kind in ("debug.start", "debug.stop", "debug.reset", "debug.snap", "debug.tick"):
        answer = server.rpc(kind, {"time": 1})
        assert (answer.status, answer.data) == (403, "Debug operations are disabled"), kind
