"""Authorization: what every operation touches, and which tokens may touch it (docs/security.md).

Theory of operation
-------------------
A token's claims give it a *scope* (``scope_of``): ``role: admin`` or ``prefix: ""`` is every
id (scope ``""``); a non-empty ``prefix`` claim is that tenant's ids; anything else is nothing
(``None``, 403 ``Forbidden``).

``TOUCHES`` is the one table of what each operation kind reads or writes: ids of promises,
tasks and schedules, the groups of the ``poll://`` addresses it names (work planted there
reaches that group's workers) and, for ``schedule.create``, the template of the ids its
firings will create.  Nested actions (``task.create``'s, ``task.fence``'s inner action,
``task.fulfill``'s, every ``task.suspend`` callback) are walked with the same rules as the
operation they stand for; the elements of ``sustain.batch`` are authorized one by one by the
app, each as if sent alone.  Searches, ``debug.*`` and unknown kinds touch *everything*: only
a scope of ``""`` may run them.  A field that is missing or of the wrong type touches nothing
(the operation then fails its own validation with a 400).

The prefix rule is on whole segments (``matches``): a prefix matches a name equal to it, or
one that continues it across a segment boundary, i.e. where the prefix's last character or
the name's next one is not a letter or digit.  ``tA-`` matches ``tA-t1``; ``org.teamA``
matches ``org.teamA``, ``org.teamA-x``, ``org.teamA.1`` and ``org.teamA:1`` but not
``org.teamAB``.  So a tenant's SDK-minted child ids (``root:1``, ``root:1.2``) stay its own.

Answers are narrowed too (``redact``): a preload lists the promises of the task's branch,
and a branch is only a tag; the promises of other tenants are taken out of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import msgspec

from sustain.engine.responses import FenceData, PreloadData, TaskClaim
from sustain.engine.retry import base_of
from sustain.protocol.addresses import parse_address
from sustain.protocol.tags import BRANCH, ORIGIN, PARENT, TARGET

Claims = dict[str, Any]
# What an operation touches: an id, a poll group, an id template, or everything.
Touch = tuple[Literal["id", "group", "template", "everything"], str]
Toucher = Callable[[dict[str, Any]], Iterator[Touch]]

EVERYTHING: Touch = ("everything", "")
ID_TAGS = (ORIGIN, BRANCH, PARENT)  # tags whose values are promise ids
TIMESTAMP = "{{.timestamp}}"


def scope_of(claims: Claims) -> str | None:
    """The prefix every touched name must match: ``""`` for all, ``None`` for none."""
    role = claims.get("role")
    if isinstance(role, str) and role.isascii() and role.lower() == "admin":
        return ""
    prefix = claims.get("prefix")
    return prefix if isinstance(prefix, str) else None


def _boundary(char: str) -> bool:
    return not char.isalnum()


def matches(prefix: str, name: str) -> bool:
    """Whether ``prefix`` covers ``name`` by whole segments (see the module docstring)."""
    if not name.startswith(prefix):
        return False
    if len(name) == len(prefix) or prefix == "":
        return True
    return _boundary(prefix[-1]) or _boundary(name[len(prefix)])


def covers(prefix: str, head: str) -> bool:
    """Whether ``prefix`` matches every name that starts with ``head`` (a template's text
    before its first unknown part): ``head`` must already be past the prefix's last segment
    boundary, whatever follows it."""
    if prefix == "":
        return True
    if len(head) < len(prefix) or not head.startswith(prefix):
        return False
    if _boundary(prefix[-1]):
        return True
    return len(head) > len(prefix) and _boundary(head[len(prefix)])


def allows(claims: Claims, kind: str, data: Any) -> bool:
    """Whether ``claims`` may run the operation ``kind`` on ``data``."""
    scope = scope_of(claims)
    if scope is None:
        return False
    if scope == "":
        return True
    return all(_allowed(scope, touch) for touch in touches(kind, data))


def allows_group(claims: Claims, group: str) -> bool:
    """Whether ``claims`` may hold a poll stream of ``group`` (same rule as ids)."""
    scope = scope_of(claims)
    return scope is not None and matches(scope, group)


def _allowed(scope: str, touch: Touch) -> bool:
    what, name = touch
    if what == "template":
        return covers(scope, name)
    if what == "everything":
        return False
    return matches(scope, name)


def touches(kind: str, data: Any) -> Iterator[Touch]:
    """Every name the operation touches (``TOUCHES``; everything for kinds not in it)."""
    toucher = TOUCHES.get(kind)
    if toucher is None:
        yield EVERYTHING
    elif isinstance(data, dict):
        yield from toucher(data)


# -- the table -------------------------------------------------------------------------------


def _ids(*fields: str) -> Toucher:
    def touch(data: dict[str, Any]) -> Iterator[Touch]:
        for field in fields:
            value = data.get(field)
            if isinstance(value, str):
                yield ("id", value)

    return touch


def _everything(data: dict[str, Any]) -> Iterator[Touch]:
    yield EVERYTHING


def _group_of(address: object) -> Iterator[Touch]:
    if isinstance(address, str):
        parsed = parse_address(address)
        if parsed is not None and parsed.group is not None:
            yield ("group", parsed.group)


def _tags(tags: object) -> Iterator[Touch]:
    """The ids named by a promise's tags and the group its ``resonate:target`` reaches."""
    if not isinstance(tags, dict):
        return
    for name in ID_TAGS:
        value = tags.get(name)
        if isinstance(value, str):
            yield ("id", value)
    yield from _group_of(tags.get(TARGET))


def _promise_create(data: dict[str, Any]) -> Iterator[Touch]:
    yield from _ids("id")(data)
    yield from _tags(data.get("tags"))


def _listener(data: dict[str, Any]) -> Iterator[Touch]:
    yield from _ids("awaited")(data)
    yield from _group_of(data.get("address"))


def _action_data(action: object) -> dict[str, Any]:
    data = action.get("data") if isinstance(action, dict) else None
    return data if isinstance(data, dict) else {}


def _task_create(data: dict[str, Any]) -> Iterator[Touch]:
    yield from _promise_create(_action_data(data.get("action")))


def _task_with_action(data: dict[str, Any]) -> Iterator[Touch]:
    """task.fulfill and task.fence: the task, then the inner action as a promise.create or
    promise.settle of its own (a settle's data has no tags, so one walk serves both)."""
    yield from _ids("id")(data)
    yield from _promise_create(_action_data(data.get("action")))


def _task_suspend(data: dict[str, Any]) -> Iterator[Touch]:
    yield from _ids("id")(data)
    actions = data.get("actions")
    for action in actions if isinstance(actions, list) else ():
        yield from _ids("awaited", "awaiter")(_action_data(action))


def _heartbeat(data: dict[str, Any]) -> Iterator[Touch]:
    tasks = data.get("tasks")
    for entry in tasks if isinstance(tasks, list) else ():
        if isinstance(entry, dict):
            yield from _ids("id")(entry)


def _schedule_create(data: dict[str, Any]) -> Iterator[Touch]:
    id = data.get("id")
    yield from _ids("id")(data)
    template = data.get("promiseId")
    if isinstance(template, str):
        # {{.id}} is the schedule's id (checked above); the firing's timestamp is not known
        # yet, so the id must be the tenant's whatever digits fill it in.
        if isinstance(id, str):
            template = template.replace("{{.id}}", id)
        head, timestamp, _ = template.partition(TIMESTAMP)
        yield ("template", head) if timestamp else ("id", head)
    yield from _tags(data.get("promiseTags"))


def _status_ids(data: dict[str, Any]) -> Iterator[Touch]:
    ids = data.get("ids")
    if isinstance(ids, list):
        for id in ids:
            if isinstance(id, str):
                yield ("id", id)


def _retry(data: dict[str, Any]) -> Iterator[Touch]:
    yield from _ids("id", "newId")(data)
    id = data.get("id")
    if isinstance(id, str) and not isinstance(data.get("newId"), str) and base_of(id) != id:
        # the derived new id is <base>~retry-<n>: a scope that matches the base matches it
        yield ("id", base_of(id))


TOUCHES: dict[str, Toucher] = {
    "promise.get": _ids("id"),
    "promise.create": _promise_create,
    "promise.settle": _ids("id"),
    "promise.register_callback": _ids("awaited", "awaiter"),
    "promise.register_listener": _listener,
    "promise.search": _everything,
    "task.get": _ids("id"),
    "task.create": _task_create,
    "task.acquire": _ids("id"),
    "task.release": _ids("id"),
    "task.fulfill": _task_with_action,
    "task.suspend": _task_suspend,
    "task.fence": _task_with_action,
    "task.heartbeat": _heartbeat,
    "task.halt": _ids("id"),
    "task.continue": _ids("id"),
    "task.search": _everything,
    "schedule.get": _ids("id"),
    "schedule.create": _schedule_create,
    "schedule.delete": _ids("id"),
    "schedule.search": _everything,
    # Queues are the whole server's configuration, no tenant's ids: an admin's (docs/queues.md).
    "sustain.queue.create": _everything,
    "sustain.queue.get": _everything,
    "sustain.queue.list": _everything,
    "sustain.queue.delete": _everything,
    "sustain.status.set": _ids("id"),
    "sustain.status.get": _status_ids,
    "sustain.retry": _retry,
}


# -- answers ---------------------------------------------------------------------------------


def redact(scope: str, data: object) -> object:
    """``data`` without the preloaded promises outside ``scope``."""
    if scope == "" or not isinstance(data, TaskClaim | PreloadData | FenceData):
        return data
    kept = [p for p in data.preload if matches(scope, p.id)]
    if len(kept) == len(data.preload):
        return data
    return msgspec.structs.replace(data, preload=kept)
