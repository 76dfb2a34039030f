"""The reference model's background pass: debug.tick = §5.1 timeouts + §5.3 schedules.

One pass at ``time``, in the spec's order: promise timeouts (batch-wise settlement chain),
task retries, task leases, then every due schedule with catch-up of every missed occurrence
(§0 item 2, §0.1 item 10).
"""

from __future__ import annotations

from typing import Any

from sustain.engine.cron import Cron
from tests.model.state import LEASE, RETRY, ModelState, MPromise, MTask, timeout_state


def tick(state: ModelState, time: int) -> None:
    due = [
        p
        for _, p in sorted(state.promises.items())
        if p.pending and p.target is not None and p.timeout_at <= time
    ]
    if due:
        state.events.add("tick: promise timeout")
        state.time_out(due, time)
    for task in _due_tasks(state, RETRY, "pending", time):
        task.timeout = (RETRY, time + state.retry_timeout)
        state.events.add("tick: retry")
        state.send_execute(task.id)
    for task in _due_tasks(state, LEASE, "acquired", time):
        task.ttl = state.retry_timeout  # §0.1 item 12 (invisible on the wire)
        state.events.add("tick: lease expired")
        state.to_pending_with_retry(task, time)
    for sid in sorted(state.schedules):
        if state.schedules[sid]["nextRunAt"] <= time:
            fire_schedule(state, state.schedules[sid], time)


def _due_tasks(state: ModelState, kind: int, task_state: str, time: int) -> list[MTask]:
    return [
        t
        for _, t in sorted(state.tasks.items())
        if t.timeout is not None
        and t.timeout[0] == kind
        and t.timeout[1] <= time
        and t.state == task_state
    ]


def next_run(cron: str, after: int) -> int:
    nxt = Cron.parse(cron).next_after(after)
    # A cron accepted at create always recurs within 5 years; this fallback is the server's.
    return nxt if nxt is not None else after + 60000


def fire_schedule(state: ModelState, schedule: dict[str, Any], time: int) -> None:
    fired_at = schedule["nextRunAt"]
    state.events.add("tick: schedule fired")
    if next_run(schedule["cron"], fired_at) <= time:
        state.events.add("tick: schedule catch-up")
    while fired_at <= time:
        _create_scheduled_promise(state, schedule, fired_at, time)
        schedule["lastRunAt"] = fired_at
        fired_at = next_run(schedule["cron"], fired_at)
    schedule["nextRunAt"] = fired_at


def _create_scheduled_promise(
    state: ModelState, schedule: dict[str, Any], fired_at: int, time: int
) -> None:
    sid = schedule["id"]
    pid = schedule["promiseId"].replace("{{.id}}", sid).replace("{{.timestamp}}", str(fired_at))
    if pid in state.promises:
        state.events.add("schedule promise exists")
        return
    tags = dict(schedule["promiseTags"])
    tags["resonate:schedule"] = sid
    for name in ("resonate:origin", "resonate:branch", "resonate:parent", "resonate:prefix"):
        tags[name] = pid
    timeout_at = fired_at + schedule["promiseTimeout"]
    param = dict(schedule["promiseParam"])
    if time >= timeout_at:
        state.events.add("schedule promise born settled")
        state.promises[pid] = MPromise(
            pid, timeout_state(tags), param, {}, tags, timeout_at, fired_at, timeout_at
        )
        state.tasks[pid] = MTask(pid, "fulfilled", 0)
        return
    state.promises[pid] = MPromise(pid, "pending", param, {}, tags, timeout_at, fired_at)
    task = MTask(pid, "pending", 0, timeout=(RETRY, time + state.retry_timeout))
    state.tasks[pid] = task
    state.send_execute(pid)
