"""Read-only queries behind the web UI, written against the ``Tx`` protocol.

Every query runs as one store transaction through the same ``Store.run_async`` the API uses,
and only calls ``Tx`` methods every store already has (``search_promises``, ``get_promise``,
``get_task``, ``due_tasks``, ``search_schedules``): the UI adds no table, index or store
method, so it works unchanged on every store.

Executions are the root promises: a promise whose ``resonate:origin`` tag equals its own id
(what every SDK writes on a top-level call, and what the engine writes on a schedule firing),
or, for clients that tag nothing, a promise with a ``resonate:target`` and no origin at all.
No store indexes "origin = id", so the list walks ``search_promises`` in id order (state and
tag filters are pushed down to the store; the id prefix becomes the starting cursor) and keeps
the roots.  The walk is bounded (``SCAN_BUDGET`` promises per page): a filter that matches
little answers a partial page and a cursor to continue from, never a scan of the whole store
while the store's single writer waits.  Pages are in id order, the only order the store
offers without a new index.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from sustain.protocol.records import Promise, PromiseState, Schedule
from sustain.protocol.status import MAX_IDS, Status
from sustain.protocol.tags import ORIGIN, RETRY_OF, SCHEDULE, TARGET, is_prefixed_by
from sustain.protocol.values import decode_json
from sustain.store.tx import LEASE, Page, TaskRow, Tx

_decode_status = msgspec.json.Decoder(Status).decode

PAGE_SIZE = 50
SCAN_BUDGET = 5_000  # promises read per executions page, at most
BATCH = 500
MAX_NODES = 2_000  # promises drawn for one execution
MAX_LINKED = 200  # executions of other origins followed from one (a chain, or a fan-out)
LINK = "sustain:link"  # a link record's tag: the id of the call of another origin
MAX_SCHEDULE_RUNS = 20
NEVER = 2**63 - 1


def to_dict(promise: Promise) -> dict[str, Any]:
    """A promise as its wire JSON (what ``sustain tree``'s call graph is built from)."""
    out: dict[str, Any] = msgspec.to_builtins(promise)
    return out


def invocation(promise: Promise) -> dict[str, Any] | None:
    """The ``{func, args, kwargs, version}`` object of a promise's param, if it holds one."""
    ok, value = decode_json(promise.param.data)
    if ok and isinstance(value, dict) and isinstance(value.get("func"), str):
        return value
    return None


def function_of(promise: Promise) -> str | None:
    inv = invocation(promise)
    return inv["func"] if inv is not None else None


def is_root(promise: Promise) -> bool:
    origin = promise.tags.get(ORIGIN)
    if origin is None:
        return TARGET in promise.tags
    return origin == promise.id


@dataclass
class Filters:
    state: PromiseState | None = None
    func: str | None = None
    prefix: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class Execution:
    promise: Promise
    func: str | None

    @property
    def schedule(self) -> str | None:
        return self.promise.tags.get(SCHEDULE)


@dataclass
class ExecutionsPage:
    items: list[Execution]
    next_cursor: str | None  # where the next page starts (None: no more)
    scanned: int  # promises read to build this page
    complete: bool  # False when the scan budget ran out before the page filled


def _before(prefix: str) -> str | None:
    """A cursor just below every id that starts with ``prefix`` (search is ``id > cursor``)."""
    if not prefix:
        return None
    last = ord(prefix[-1])
    if last == 0:
        return prefix[:-1] or None
    return prefix[:-1] + chr(last - 1) + "\U0010ffff"


def executions(
    tx: Tx,
    filters: Filters,
    cursor: str | None,
    limit: int = PAGE_SIZE,
    budget: int = SCAN_BUDGET,
) -> ExecutionsPage:
    prefix = filters.prefix or ""
    scan = cursor if cursor is not None else _before(prefix)
    items: list[Execution] = []
    scanned = 0
    while scanned < budget:
        batch = tx.search_promises(
            filters.state, filters.tags, Page(min(BATCH, budget - scanned), scan)
        )
        if not batch:
            return ExecutionsPage(items, None, scanned, True)
        for promise in batch:
            scanned += 1
            scan = promise.id
            if prefix and not promise.id.startswith(prefix):
                if promise.id > prefix:
                    return ExecutionsPage(items, None, scanned, True)
                continue
            if not is_root(promise):
                continue
            func = function_of(promise)
            if filters.func and func != filters.func:
                continue
            items.append(Execution(promise, func))
            if len(items) == limit:
                return ExecutionsPage(items, promise.id, scanned, True)
    return ExecutionsPage(items, scan, scanned, False)


@dataclass
class Node:
    """One promise of an execution with its task (if it has one)."""

    promise: Promise
    task: TaskRow | None
    # The promise's status record (protocol/status.py): the SDK's record of its failures.
    status: Status | None = None


@dataclass
class ExecutionDetail:
    root: Promise
    nodes: dict[str, Node]
    truncated: bool
    # the executions started by ``sustain retry`` of this one (tagged sustain:retry-of = id)
    retries: list[str] = field(default_factory=list)


def execution(tx: Tx, id: str) -> ExecutionDetail | None:
    """The promise ``id`` and every promise of its execution (origin = ``id``), with tasks.

    Asked for a promise inside an execution (its origin is another id), the answer is the
    part of that execution below it, the ids that extend ``id`` (as ``sustain tree`` does).
    Calls of another origin the execution made are followed through their link records
    (SDK-WIRE §2.1), with their own executions, as ``sustain tree`` does."""
    root = tx.get_promise(id)
    if root is None:
        return None
    origin = root.tags.get(ORIGIN) or id
    found: dict[str, Node] = {id: Node(root, tx.get_task(id))}
    truncated = _collect(tx, origin, id, found)
    linked: set[str] = {id}
    pending = list(found.values())
    while pending and not truncated:
        target = pending.pop().promise.tags.get(LINK)
        if not target or target in linked or len(linked) > MAX_LINKED:
            continue
        linked.add(target)
        promise = tx.get_promise(target)
        if promise is None or target in found:
            continue
        found[target] = Node(promise, tx.get_task(target))
        before = set(found)
        if (promise.tags.get(ORIGIN) or target) == target:
            truncated = _collect(tx, target, target, found)
        pending.extend(node for key, node in found.items() if key not in before)
    _with_status(tx, found)
    retried = tx.search_promises(None, {RETRY_OF: id}, Page(MAX_LINKED))
    return ExecutionDetail(root, found, truncated, [p.id for p in retried])


def _with_status(tx: Tx, nodes: dict[str, Node]) -> None:
    ids = list(nodes)
    for i in range(0, len(ids), MAX_IDS):
        for key, text in tx.get_statuses(ids[i : i + MAX_IDS]).items():
            nodes[key].status = _decode_status(text)


def _collect(tx: Tx, origin: str, id: str, found: dict[str, Node]) -> bool:
    """Add the promises of ``origin`` (below ``id``) to ``found``; True when cut short."""
    cursor: str | None = None
    while True:
        batch = tx.search_promises(None, {ORIGIN: origin}, Page(BATCH, cursor))
        for promise in batch:
            if promise.id in found or (origin != id and not is_prefixed_by(promise.id, id)):
                continue
            found[promise.id] = Node(promise, tx.get_task(promise.id))
        if len(batch) < BATCH:
            return False
        cursor = batch[-1].id
        if len(found) >= MAX_NODES:
            return True


def promise_with_task(tx: Tx, id: str) -> Node | None:
    promise = tx.get_promise(id)
    if promise is None:
        return None
    node = Node(promise, tx.get_task(id))
    _with_status(tx, {id: node})
    return node


@dataclass
class ScheduleRow:
    schedule: Schedule
    runs: list[Promise]  # the promises it created (most recent last), at most a few


def schedules(tx: Tx, limit: int = 200) -> list[ScheduleRow]:
    rows = []
    for schedule in tx.search_schedules({}, Page(limit)):
        runs = tx.search_promises(None, {SCHEDULE: schedule.id}, Page(MAX_SCHEDULE_RUNS + 1))
        rows.append(ScheduleRow(schedule, runs))
    return rows


def held_tasks(tx: Tx) -> dict[str, list[TaskRow]]:
    """Acquired tasks by holder pid.  An acquired task always carries its lease timeout, so
    ``due_tasks`` at the end of time lists them (with pending tasks' retry timers), without
    reading fulfilled or suspended ones."""
    by_pid: dict[str, list[TaskRow]] = {}
    for task in tx.due_tasks(NEVER):
        if task.state == "acquired" and task.timeout_type == LEASE and task.pid is not None:
            by_pid.setdefault(task.pid, []).append(task)
    return by_pid


def tag_filter(pairs: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in pairs.items() if k}
