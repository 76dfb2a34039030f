"""The reference model's state and the rules every operation shares.

Theory of operation: the whole store is a handful of plain dicts.  A promise carries the set
of awaiters waiting on it (its not-yet-fired callbacks) and its listener addresses; a task
carries the set of awaited promises that settled since it last ran (its *ready* callbacks,
whose size is ``resumes``) and its single timeout.  Promise timeouts are not stored: a
promise has one exactly while it is pending with a ``resonate:target`` tag (§3.2).

Everything is written for obviousness, not speed: each rule of PROTOCOL.md §3.3 (the
settlement chain) and §2 (try_timeout, preload, delay) appears once, in the order the spec
states it.  Nothing here imports the engine or a store; the model is the independent
statement of the semantics the engine is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TARGET = "resonate:target"
TIMER = "resonate:timer"
DELAY = "resonate:delay"
BRANCH = "resonate:branch"

RETRY = 0
LEASE = 1


@dataclass
class MPromise:
    id: str
    state: str
    param: dict[str, Any]
    value: dict[str, Any]
    tags: dict[str, str]
    timeout_at: int
    created_at: int
    settled_at: int | None = None
    awaiters: set[str] = field(default_factory=set)  # callbacks (this, awaiter), not fired
    listeners: set[str] = field(default_factory=set)

    @property
    def pending(self) -> bool:
        return self.state == "pending"

    @property
    def target(self) -> str | None:
        return self.tags.get(TARGET)

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "param": dict(self.param),
            "value": dict(self.value),
            "tags": dict(self.tags),
            "timeoutAt": self.timeout_at,
            "createdAt": self.created_at,
        }
        if self.settled_at is not None:
            rec["settledAt"] = self.settled_at
        return rec


@dataclass
class MTask:
    id: str
    state: str
    version: int
    pid: str | None = None
    ttl: int | None = None
    ready: set[str] = field(default_factory=set)  # awaited ids that settled (resumes)
    timeout: tuple[int, int] | None = None  # (type, at)

    def record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {
            "id": self.id,
            "state": self.state,
            "version": self.version,
            "resumes": len(self.ready),
        }
        if self.state == "acquired":
            rec["ttl"] = self.ttl
            rec["pid"] = self.pid
        return rec


def value_of(raw: Any) -> dict[str, Any]:
    """A ``{headers?, data?}`` object as stored: absent and null fields are omitted."""
    if not isinstance(raw, dict):
        return {}
    return {k: raw[k] for k in ("headers", "data") if raw.get(k) is not None}


def timeout_state(tags: dict[str, str]) -> str:
    return "resolved" if tags.get(TIMER) == "true" else "rejected_timedout"


class ModelState:
    def __init__(self, retry_timeout: int = 30000) -> None:
        self.retry_timeout = retry_timeout
        self.reset()

    def reset(self) -> None:
        # Which rules of the spec the model has applied (never cleared by debug.reset): the
        # differential test asserts its sequences reached every one of them.
        self.events: set[str] = getattr(self, "events", set())
        self.promises: dict[str, MPromise] = {}
        self.tasks: dict[str, MTask] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        self.executes: dict[str, tuple[str, int]] = {}  # task id -> (address, version)
        self.unblocks: set[tuple[str, str]] = set()  # (promise id, address)

    # -- outbox ------------------------------------------------------------------------------
    def send_execute(self, task_id: str) -> None:
        """Queue (or replace) the execute message of a task, with its current version."""
        address = self.promises[task_id].target
        assert address is not None
        self.executes[task_id] = (address, self.tasks[task_id].version)

    # -- task transitions shared by several ops ----------------------------------------------
    def to_pending_with_retry(self, task: MTask, now: int) -> None:
        """pending, retry timeout at now + R, lease cleared, execute queued."""
        task.state = "pending"
        task.pid = None
        task.timeout = (RETRY, now + self.retry_timeout)
        self.send_execute(task.id)

    def acquire(self, task: MTask, pid: str, ttl: int, now: int) -> None:
        task.state = "acquired"
        task.version += 1
        task.pid = pid
        task.ttl = ttl
        task.timeout = (LEASE, now + ttl)
        task.ready.clear()

    # -- creation ------------------------------------------------------------------------------
    def create_promise(
        self,
        id: str,
        timeout_at: int,
        param: dict[str, Any],
        tags: dict[str, str],
        now: int,
    ) -> MPromise:
        """promise.create's effects for a new id (§2.2), delay included."""
        if now >= timeout_at:
            p = MPromise(
                id, timeout_state(tags), param, {}, tags, timeout_at, timeout_at, timeout_at
            )
            self.events.add("born settled")
            self.promises[id] = p
            if p.target is not None:
                self.tasks[id] = MTask(id, "fulfilled", 0)
            return p
        p = MPromise(id, "pending", param, {}, tags, timeout_at, now)
        self.promises[id] = p
        if p.target is not None:
            task = MTask(id, "pending", 0)
            self.tasks[id] = task
            delay = tags.get(DELAY)
            if delay is not None and now < int(delay):
                task.timeout = (RETRY, int(delay))  # first execute when the retry fires
                self.events.add("delay deferred")
            else:
                task.timeout = (RETRY, now + self.retry_timeout)
                self.send_execute(id)
        return p

    # -- settlement ----------------------------------------------------------------------------
    def settle(self, p: MPromise, state: str, value: dict[str, Any], now: int) -> None:
        """An explicit settle of a pending promise, then the settlement chain."""
        p.state = state
        p.value = value
        p.settled_at = now
        self.settlement_chain([p], now)

    def time_out(self, batch: list[MPromise], now: int) -> None:
        """Time out pending promises together (try_timeout, tick): settle all, then chain."""
        for p in batch:
            p.state = timeout_state(p.tags)
            p.settled_at = p.timeout_at
        self.settlement_chain(batch, now)

    def try_timeout(self, ids: list[str], now: int) -> None:
        batch: list[MPromise] = []
        for id in dict.fromkeys(ids):
            p = self.promises.get(id)
            if p is not None and p.pending and p.timeout_at <= now:
                batch.append(p)
        if batch:
            self.events.add("try_timeout")
            self.time_out(batch, now)

    def settlement_chain(self, batch: list[MPromise], now: int) -> None:
        """§3.3 steps 2-4 for promises that just left pending, batch-wise."""
        fulfilled: set[str] = set()
        for p in batch:  # step 2: SettlementEnqueued
            task = self.tasks.get(p.id)
            if task is not None and task.state != "fulfilled":
                self.fulfil(task)
                fulfilled.add(task.id)
        for p in batch:  # step 3: ResumptionEnqueued
            awaiters, p.awaiters = sorted(p.awaiters), set()
            for awaiter_id in awaiters:
                awaiter = self.promises[awaiter_id]
                task = self.tasks.get(awaiter_id)
                # §0 item 6: an awaiter past its own deadline is skipped and its callback
                # dropped; its own timeout settles it later.
                if not awaiter.pending or now >= awaiter.timeout_at:
                    self.events.add("callback dropped: awaiter past deadline")
                    continue
                if task is None or task.state == "fulfilled" or task.id in fulfilled:
                    continue
                task.ready.add(p.id)
                self.events.add(f"callback fired: {task.state} awaiter")
                if task.state == "suspended":
                    self.to_pending_with_retry(task, now)
        for p in batch:  # step 4: ListenerUnblocked
            for address in p.listeners:
                self.events.add("listener unblocked")
                self.unblocks.add((p.id, address))
            p.listeners = set()

    def fulfil(self, task: MTask) -> None:
        """A task whose promise settled: fulfilled, no timeout, no callbacks as awaiter."""
        task.state = "fulfilled"
        task.pid = None
        task.timeout = None
        task.ready.clear()
        for other in self.promises.values():
            other.awaiters.discard(task.id)

    # -- views ---------------------------------------------------------------------------------
    def preload(self, task_id: str) -> list[dict[str, Any]]:
        branch = self.promises[task_id].tags.get(BRANCH)
        if not branch:  # §0 item 7: an empty branch is no branch
            return []
        return [
            self.promises[id].record()
            for id in sorted(self.promises)
            if id != task_id and self.promises[id].tags.get(BRANCH) == branch
        ]

    def snapshot(self) -> dict[str, Any]:
        """debug.snap, ordered as §0.1 item 11 says."""
        ps = [self.promises[id] for id in sorted(self.promises)]
        callbacks = sorted((a, p.id) for p in ps for a in p.awaiters)
        listeners = sorted((p.id, a) for p in ps for a in p.listeners)
        tasks = [self.tasks[id] for id in sorted(self.tasks)]
        messages: list[dict[str, Any]] = [
            {
                "address": self.executes[id][0],
                "message": {
                    "kind": "execute",
                    "head": {},
                    "data": {"task": {"id": id, "version": self.executes[id][1]}},
                },
            }
            for id in sorted(self.executes)
        ]
        messages += [
            {
                "address": address,
                "message": {
                    "kind": "unblock",
                    "head": {},
                    "data": {"promise": self.promises[pid].record()},
                },
            }
            for pid, address in sorted(self.unblocks)
        ]
        return {
            "promises": [p.record() for p in ps],
            "promiseTimeouts": [
                {"id": p.id, "timeout": p.timeout_at}
                for p in ps
                if p.pending and p.target is not None
            ],
            "callbacks": [{"awaiter": a, "awaited": b} for a, b in callbacks],
            "listeners": [{"id": pid, "address": a} for pid, a in listeners],
            "tasks": [t.record() for t in tasks],
            "taskTimeouts": [
                {"id": t.id, "type": t.timeout[0], "timeout": t.timeout[1]}
                for t in tasks
                if t.timeout is not None
            ],
            "messages": messages,
        }
