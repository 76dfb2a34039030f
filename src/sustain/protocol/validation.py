"""The declarative checks of PROTOCOL.md §2, one function per request shape.

Each function raises ``ProtocolError(400, <catalogue message>)`` for the first failing check,
in the order of §0.1 item 2 (field-level checks in table order, then struct-level ones).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sustain.protocol import tags as t
from sustain.protocol.addresses import parse_address
from sustain.protocol.errors import ProtocolError
from sustain.protocol.limits import (
    DEFAULT_LIMITS,
    Limits,
    cron_terms,
    cron_too_long,
    cron_too_many_terms,
    too_many,
)
from sustain.protocol.queues import check_tags as check_queue_tags

if TYPE_CHECKING:
    from sustain.protocol.requests import (
        PromiseCreate,
        PromiseSettle,
        RegisterCallback,
        RegisterListener,
        ScheduleCreate,
        TaskCreate,
        TaskHeartbeat,
    )

MAX_LIMIT = 1000
_MAX_DELAY = 2**63


def fail(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def required(value: str, message: str) -> None:
    if not value:
        raise fail(message)


def version(value: int) -> None:
    if value < 0:
        raise fail("Version must be a non-negative integer")


def ttl(value: int) -> None:
    if value < 1:
        raise fail("TTL must be a positive integer")


def limit(value: int | None) -> None:
    if value is None:
        return
    if value < 1:
        raise fail("Limit must be a positive integer")
    if value > MAX_LIMIT:
        raise fail("Invalid 'limit' — must be between 1 and 1000")


def tag_count(tags: dict[str, str] | None, limits: Limits, field: str = "tags") -> None:
    # Every stored tag is matched by every tag search, and every filter entry by every row.
    if tags is not None and len(tags) > limits.max_tags:
        raise fail(too_many(field, limits.max_tags))


def parse_delay(value: str) -> int | None:
    """The ``resonate:delay`` tag as epoch ms: a strict decimal (optional ``+``) below 2^63."""
    digits = value[1:] if value.startswith("+") else value
    if not digits or not digits.isascii() or not digits.isdigit():
        return None
    n = int(digits)
    return n if n < _MAX_DELAY else None


def promise_create(r: PromiseCreate, limits: Limits = DEFAULT_LIMITS) -> None:
    """§2.2 field checks then the tag rules, without the target address check."""
    required(r.id, "Promise ID is required")
    if r.timeoutAt < 0:
        raise fail("TimeoutAt must be a non-negative integer")
    tag_count(r.tags, limits)
    if "\x00" in r.id:
        raise fail("Promise ID must not contain null bytes")
    tags = r.tags or {}
    origin = tags.get(t.ORIGIN)
    # An origin may contain '.' (PROTOCOL.md §2.2 refuses it): the official SDKs take any root
    # id without ':' (`my.app.workflow`, `reports.daily-<tick>`) and tag its whole tree with
    # it (docs/interop.md).  Same-origin checks stay consistent: every id of such a tree
    # starts with the root, so `tags.origin_of` gives them all the same answer.
    if origin is not None and not t.is_prefixed_by(r.id, origin):
        raise fail("Promise ID must be prefixed by resonate:origin")
    branch = tags.get(t.BRANCH)
    if branch is not None and not t.is_prefixed_by(r.id, branch):
        raise fail("Promise ID must be prefixed by resonate:branch")
    parent = tags.get(t.PARENT)
    if parent is not None and not t.is_prefixed_by(r.id, parent):
        raise fail("Promise ID must be prefixed by resonate:parent")
    prefix = tags.get(t.PREFIX)
    if prefix is not None and "." in prefix:
        raise fail("resonate:prefix must not contain '.'")
    delay = tags.get(t.DELAY)
    if delay is not None:
        at = parse_delay(delay)
        if at is None:
            raise fail("resonate:delay must be a non-negative integer")
        if at >= r.timeoutAt:
            raise fail("resonate:delay must be less than timeoutAt")
        if t.TARGET not in tags:
            raise fail("resonate:delay requires a resonate:target tag")
    if tags and any(name in tags for name in (t.QUEUE, t.QUEUE_KEY, t.PRIORITY, t.DEDUP_OF)):
        check_queue_tags(tags)


def target_address(tags: dict[str, str] | None) -> None:
    target = (tags or {}).get(t.TARGET)
    if target is not None and parse_address(target) is None:
        raise fail("Invalid resonate:target address")


def promise_create_with_target(r: PromiseCreate, limits: Limits = DEFAULT_LIMITS) -> None:
    promise_create(r, limits)
    target_address(r.tags)


def promise_settle(r: PromiseSettle, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.id, "Promise ID is required")


def register_callback(r: RegisterCallback, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.awaited, "Awaited promise ID is required")
    required(r.awaiter, "Awaiter promise ID is required")
    if r.awaited == r.awaiter:
        raise fail("Awaited and awaiter must be different promises")
    if t.origin_of(r.awaited) != t.origin_of(r.awaiter):
        raise fail("Awaiter and awaited must belong to the same origin")


def register_listener(r: RegisterListener, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.awaited, "Awaited promise ID is required")
    required(r.address, "Address is required")
    if parse_address(r.address) is None:
        raise fail("Invalid listener address")


def task_create(r: TaskCreate, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.pid, "Process ID is required")
    ttl(r.ttl)
    promise_create(r.action.data, limits)
    tags = r.action.data.tags or {}
    if t.TARGET not in tags:
        raise fail("Action must have a resonate:target tag")
    if t.DELAY in tags:
        raise fail("Action must not have a resonate:delay tag")
    target_address(tags)


def heartbeat(r: TaskHeartbeat, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.pid, "Process ID is required")
    if not r.tasks:
        raise fail("Tasks array must not be empty")
    # Each entry is a row read and written on the store's writer: bound them.
    if len(r.tasks) > limits.max_heartbeat_tasks:
        raise fail(too_many("tasks", limits.max_heartbeat_tasks))
    # No same-origin check (PROTOCOL.md §2.14 has one): the official SDKs send one heartbeat
    # for every task a worker holds, whatever its origin, and a 400 there made their leases
    # lapse under long steps (docs/interop.md).  Each entry is applied on its own anyway.


def cron_size(expr: str, limits: Limits) -> None:
    """The cron text's bounds, checked before any parsing: the parse, the cron cache and
    every firing's next-occurrence walk all grow with the text."""
    if len(expr) > limits.max_cron_length:
        raise fail(cron_too_long(limits.max_cron_length))
    if cron_terms(expr) > limits.max_cron_terms:
        raise fail(cron_too_many_terms(limits.max_cron_terms))


def schedule_create(r: ScheduleCreate, limits: Limits = DEFAULT_LIMITS) -> None:
    required(r.id, "Schedule ID is required")
    # A schedule id may contain '.' (PROTOCOL.md §2.19 refuses it): the official SDKs name
    # schedules like root ids, and fire them as `{{.id}}-{{.timestamp}}` (docs/interop.md).
    required(r.cron, "Cron expression is required")
    cron_size(r.cron, limits)
    required(r.promiseId, "Promise ID template is required")
    if r.promiseTimeout < 0:
        raise fail("Promise timeout must be a non-negative integer")
    tag_count(r.promiseTags, limits, "promiseTags")
    if t.TARGET not in (r.promiseTags or {}):
        raise fail("promiseTags must include a resonate:target tag")
    # Sustain validates the target here because fired promises are not validated (§0.1 10).
    target_address(r.promiseTags)
