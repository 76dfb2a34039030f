"""The reference model of the protocol: ``apply(kind, data, now, debug_time)``.

Theory of operation: one method per operation of PROTOCOL.md §2, each written as the spec
states it: validate, try_timeout, the existence and state checks in the catalogue's order,
then the effects on the plain state of ``tests.model.state``.  Answers are plain builtins (what
``msgspec.to_builtins`` makes of the engine's answer), so the two compare with ``==``.

Like the Rust oracle, the model reuses the request parser (``sustain.protocol.requests``:
``parse`` and, for task.fence's inner action, ``parse_fence_action``) for the 400s of
declarative validation, so the messages match by construction, and the shared cron evaluator
(``sustain.engine.cron``).  Everything else (try_timeout, state machines, settlement chain,
outbox, timers, schedules) is written here again from the spec, never imported from the
engine or a store.  Requests are read from the raw ``data`` dict once ``parse`` accepted it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sustain.engine.cron import Cron, InvalidCron
from sustain.protocol.errors import ProtocolError
from sustain.protocol.records import VERSION
from sustain.protocol.requests import parse, parse_fence_action
from tests.model.state import ModelState, MTask, value_of
from tests.model.timers import next_run, tick

Answer = tuple[int, Any]


def _err(status: int, message: str) -> ProtocolError:
    return ProtocolError(status, message)


class ReferenceModel(ModelState):
    """The whole protocol, single-threaded and in memory; ``debug`` operations always on."""

    def apply(
        self,
        kind: str,
        data: dict[str, Any],
        now: int,
        debug_time: int | None = None,
        corr_id: str = "c",
    ) -> Answer:
        self.corr_id = corr_id
        if kind.startswith("debug."):
            return self._debug(kind, data, debug_time)
        op: Callable[[dict[str, Any], int], Answer] | None = (
            getattr(self, "op_" + kind.replace(".", "_"), None) if kind in KINDS else None
        )
        if op is None:
            return 400, f"Unknown operation: {kind}"
        try:
            return op(data, now)
        except ProtocolError as e:
            return e.status, e.message

    # -- helpers -----------------------------------------------------------------------------
    def _promise(self, id: str, message: str = "Promise not found", status: int = 404) -> Any:
        p = self.promises.get(id)
        if p is None:
            raise _err(status, message)
        return p

    def _task(self, id: str) -> MTask:
        t = self.tasks.get(id)
        if t is None:
            raise _err(404, "Task not found")
        return t

    def _task_answer(self, task: MTask) -> dict[str, Any]:
        return {
            "task": task.record(),
            "promise": self.promises[task.id].record(),
            "preload": self.preload(task.id),
        }

    @staticmethod
    def _page(items: list[Any], key: str, limit: int, cursor: str | None) -> dict[str, Any]:
        rows = [r for r in items if cursor is None or r["id"] > cursor]
        out: dict[str, Any] = {key: rows[:limit]}
        if len(rows) > limit:
            out["cursor"] = rows[limit - 1]["id"]
        return out

    # -- promises ----------------------------------------------------------------------------
    def op_promise_get(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.get", d)
        self.try_timeout([d["id"]], now)
        return 200, {"promise": self._promise(d["id"]).record()}

    def _create(self, d: dict[str, Any], now: int) -> dict[str, Any]:
        """promise.create after validation (also the fenced create)."""
        self.try_timeout([d["id"]], now)
        p = self.promises.get(d["id"])
        if p is None:
            p = self.create_promise(
                d["id"], d["timeoutAt"], value_of(d.get("param")), dict(d.get("tags") or {}), now
            )
        return {"promise": p.record()}

    def op_promise_create(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.create", d)
        return 200, self._create(d, now)

    def _settle(self, d: dict[str, Any], now: int) -> dict[str, Any]:
        p = self._promise(d["id"])
        if p.pending:
            self.settle(p, d["state"], value_of(d.get("value")), now)
        return {"promise": p.record()}

    def op_promise_settle(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.settle", d)
        self.try_timeout([d["id"]], now)
        return 200, self._settle(d, now)

    def op_promise_register_callback(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.register_callback", d)
        awaited_id, awaiter_id = d["awaited"], d["awaiter"]
        self.try_timeout([awaited_id, awaiter_id], now)
        awaited = self._promise(awaited_id, "Awaited promise not found")
        awaiter = self._promise(awaiter_id, "Awaiter promise not found", 422)
        if awaiter.target is None:
            raise _err(422, "Awaiter promise has no resonate:target tag")
        if awaiter.pending:
            task = self.tasks[awaiter_id]
            if awaited.pending:
                awaited.awaiters.add(awaiter_id)
            elif task.state == "suspended":
                # §0 item 3: resume it, record no ready callback.
                self.events.add("register_callback resumes")
                self.to_pending_with_retry(task, now)
            elif task.state in ("pending", "acquired"):
                self.events.add("register_callback ready")
                task.ready.add(awaited_id)
        return 200, {"promise": awaited.record()}

    def op_promise_register_listener(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.register_listener", d)
        self.try_timeout([d["awaited"]], now)
        p = self._promise(d["awaited"], "Awaited promise not found")
        if p.pending:
            p.listeners.add(d["address"])
        return 200, {"promise": p.record()}

    def op_promise_search(self, d: dict[str, Any], now: int) -> Answer:
        parse("promise.search", d)
        state, tags = d.get("state"), d.get("tags") or {}
        rows = [
            self.promises[id].record()
            for id in sorted(self.promises)
            if (state is None or self.promises[id].state == state)
            and all(self.promises[id].tags.get(k) == v for k, v in tags.items())
        ]
        return 200, self._page(rows, "promises", _limit(d, 100), d.get("cursor"))

    # -- tasks -------------------------------------------------------------------------------
    def op_task_get(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.get", d)
        self.try_timeout([d["id"]], now)
        return 200, {"task": self._task(d["id"]).record()}

    def op_task_create(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.create", d)  # incl. target required, no delay, valid address
        action = d["action"]["data"]
        tags = dict(action.get("tags") or {})
        id = action["id"]
        self.try_timeout([id], now)
        if id in self.promises:
            task = self.tasks.get(id)
            if task is None:
                raise _err(422, "The promise does not have a resonate:target tag")
            self.events.add(f"task.create on {task.state} task")
            if task.state == "pending":
                self.acquire(task, d["pid"], d["ttl"], now)
            elif task.state != "fulfilled":
                raise _err(409, "Already exists")
            return 200, self._task_answer(task)
        p = self.create_promise(id, action["timeoutAt"], value_of(action.get("param")), tags, now)
        task = self.tasks[id]
        if p.pending:  # the caller is the worker: acquired v1, no execute message
            self.executes.pop(id, None)
            task.state, task.version = "acquired", 1
            task.pid, task.ttl = d["pid"], d["ttl"]
            task.timeout = (1, now + d["ttl"])
        return 200, self._task_answer(task)

    def op_task_acquire(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.acquire", d)
        self.try_timeout([d["id"]], now)
        task = self._task(d["id"])
        if task.state != "pending":
            raise _err(409, "Task is not pending")
        if task.version != d["version"]:
            raise _err(409, "Version mismatch")
        self.acquire(task, d["pid"], d["ttl"], now)
        return 200, self._task_answer(task)

    def _held(self, d: dict[str, Any], message: str) -> MTask:
        task = self._task(d["id"])
        if task.state != "acquired" or task.version != d["version"]:
            raise _err(409, message)
        return task

    def op_task_release(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.release", d)
        self.try_timeout([d["id"]], now)
        task = self._held(d, "Task version mismatch or invalid state")
        self.to_pending_with_retry(task, now)
        return 200, {}

    def op_task_fulfill(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.fulfill", d)
        self.try_timeout([d["id"]], now)
        task = self._held(d, "Task version mismatch or invalid state")
        p = self.promises[task.id]
        action = d["action"]["data"]
        self.settle(p, action["state"], value_of(action.get("value")), now)
        return 200, {"promise": p.record()}

    def op_task_suspend(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.suspend", d)
        awaited = list(dict.fromkeys(a["data"]["awaited"] for a in d["actions"]))
        self.try_timeout([d["id"], *awaited], now)
        task = self._held(d, "Task is not acquired or version mismatch")
        if any(id not in self.promises for id in awaited):
            raise _err(422, "Awaited promise not found")
        task.ready.clear()
        if any(not self.promises[id].pending for id in awaited):
            self.events.add("suspend 300")
            return 300, {"preload": self.preload(task.id)}
        for id in awaited:
            self.promises[id].awaiters.add(task.id)
        task.state, task.pid, task.timeout = "suspended", None, None
        self.events.add("suspended")
        return 200, {}

    def op_task_fence(self, d: dict[str, Any], now: int) -> Answer:
        request = parse("task.fence", d)
        kind, inner = d["action"]["kind"], d["action"]["data"]
        inner_id = inner.get("id") if isinstance(inner, dict) else None
        # §0.1 item 3: try_timeout first (committed even if the request then fails), then
        # the inner action's checks, then the task's.
        self.try_timeout([d["id"], *([inner_id] if isinstance(inner_id, str) else [])], now)
        parse_fence_action(request.action)
        task = self._task(d["id"])
        if task.state != "acquired" or task.version != d["version"]:
            raise _err(409, "Version mismatch")
        status, data = 200, None
        self.events.add(f"fence {kind}")
        if kind == "promise.create":
            data = self._create(inner, now)
        else:
            try:
                data = self._settle(inner, now)
            except ProtocolError as e:
                status, data = e.status, e.message
        envelope = {
            "kind": kind,
            "head": {"corrId": self.corr_id, "status": status, "version": VERSION},
            "data": data,
        }
        # Sustain's opt-out: "sustain:preload": false answers no preload (parse accepted
        # only a bool, so anything but False means the full branch).
        branch = self.preload(task.id)
        if d.get("sustain:preload", True) is False:
            if branch:
                self.events.add("fence preload skipped")
            branch = []
        return 200, {"action": envelope, "preload": branch}

    def op_task_heartbeat(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.heartbeat", d)
        for ref in d["tasks"]:
            task = self.tasks.get(ref["id"])
            if (
                task is not None
                and task.state == "acquired"
                and task.version == ref["version"]
                and task.pid == d["pid"]
            ):
                assert task.ttl is not None
                task.timeout = (1, now + task.ttl)
                self.events.add("heartbeat extended")
        return 200, {}

    def op_task_halt(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.halt", d)
        self.try_timeout([d["id"]], now)
        task = self._task(d["id"])
        if task.state == "fulfilled":
            raise _err(409, "Task is fulfilled")
        self.events.add(f"halt {task.state}")
        task.state, task.pid, task.timeout = "halted", None, None
        return 200, {}

    def op_task_continue(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.continue", d)
        self.try_timeout([d["id"]], now)
        task = self._task(d["id"])
        if task.state != "halted":
            raise _err(409, "Task is not halted")
        self.to_pending_with_retry(task, now)
        return 200, {}

    def op_task_search(self, d: dict[str, Any], now: int) -> Answer:
        parse("task.search", d)
        state = d.get("state")
        rows = [
            self.tasks[id].record()
            for id in sorted(self.tasks)
            if state is None or self.tasks[id].state == state
        ]
        return 200, self._page(rows, "tasks", _limit(d, 100), d.get("cursor"))

    # -- schedules ---------------------------------------------------------------------------
    def op_schedule_get(self, d: dict[str, Any], now: int) -> Answer:
        parse("schedule.get", d)
        s = self.schedules.get(d["id"])
        if s is None:
            raise _err(404, "Schedule not found")
        return 200, {"schedule": _schedule_record(s)}

    def op_schedule_create(self, d: dict[str, Any], now: int) -> Answer:
        parse("schedule.create", d)  # incl. the promiseTags target address (§0.1 item 10)
        tags = dict(d.get("promiseTags") or {})
        try:
            next_at = Cron.parse(d["cron"]).next_after(now)
        except InvalidCron:
            next_at = None
        if next_at is None:
            raise _err(400, "Invalid cron expression")
        if d["id"] not in self.schedules:
            self.schedules[d["id"]] = {
                "id": d["id"],
                "cron": d["cron"],
                "promiseId": d["promiseId"],
                "promiseTimeout": d["promiseTimeout"],
                "promiseParam": value_of(d.get("promiseParam")),
                "promiseTags": tags,
                "createdAt": now,
                "nextRunAt": next_run(d["cron"], now),
                "lastRunAt": None,
            }
        return 200, {"schedule": _schedule_record(self.schedules[d["id"]])}

    def op_schedule_delete(self, d: dict[str, Any], now: int) -> Answer:
        parse("schedule.delete", d)
        if self.schedules.pop(d["id"], None) is None:
            raise _err(404, "Schedule not found")
        return 200, {}

    def op_schedule_search(self, d: dict[str, Any], now: int) -> Answer:
        parse("schedule.search", d)
        tags = d.get("tags") or {}
        rows = [
            _schedule_record(self.schedules[id])
            for id in sorted(self.schedules)
            if all(self.schedules[id]["promiseTags"].get(k) == v for k, v in tags.items())
        ]
        return 200, self._page(rows, "schedules", _limit(d, 10), d.get("cursor"))

    # -- debug -------------------------------------------------------------------------------
    def _debug(self, kind: str, d: dict[str, Any], debug_time: int | None) -> Answer:
        if kind in ("debug.start", "debug.stop"):
            return 200, {}
        if kind == "debug.reset":
            self.reset()
            return 200, {}
        if kind == "debug.snap":
            return 200, self.snapshot()
        if kind == "debug.tick":
            time = d.get("time")
            if not isinstance(time, int) or isinstance(time, bool):
                return 400, "Missing or invalid 'time' field"
            if debug_time is not None and debug_time != time:
                return 400, "resonate:debug_time must equal data.time"
            tick(self, time)
            return 200, []
        return 400, f"Unknown operation: {kind}"


KINDS = frozenset(
    {
        "promise.get",
        "promise.create",
        "promise.settle",
        "promise.register_callback",
        "promise.register_listener",
        "promise.search",
        "task.get",
        "task.create",
        "task.acquire",
        "task.release",
        "task.fulfill",
        "task.suspend",
        "task.fence",
        "task.heartbeat",
        "task.halt",
        "task.continue",
        "task.search",
        "schedule.get",
        "schedule.create",
        "schedule.delete",
        "schedule.search",
    }
)


def _limit(d: dict[str, Any], default: int) -> int:
    limit = d.get("limit")
    return default if limit is None else int(limit)


def _schedule_record(s: dict[str, Any]) -> dict[str, Any]:
    rec = {k: v for k, v in s.items() if v is not None}
    rec["promiseParam"] = dict(s["promiseParam"])
    rec["promiseTags"] = dict(s["promiseTags"])
    return rec
