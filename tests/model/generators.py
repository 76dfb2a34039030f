"""Request generators for the differential test: one function per operation kind.

Each generator draws the ``data`` of one request from small pools (promises ``p0..p7`` and a
few children, schedules ``s0..s3``, two pids, valid and invalid addresses), guided by the
reference model's state so that most requests are meaningful (the version of an acquired
task, an awaited promise of the same origin, ...), and sometimes deliberately wrong.  The
Rust harness (PROTOCOL.md §8.2) generates from its oracle the same way; unlike it, this one
also produces delay tags, branches and preload, born-settled schedule promises, invalid fence
actions and register_callback on suspended awaiters (§8.2 lists those as never exercised).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from tests.model.reference import ReferenceModel

Draw = Callable[[st.SearchStrategy[Any]], Any]
Gen = Callable[[Draw, ReferenceModel, int], dict[str, Any]]

ROOTS = [f"p{i}" for i in range(8)]
# Both separators: PROTOCOL.md's ``p0.1`` and the official SDKs' ``p1:1.2`` (decisions.md).
IDS = [*ROOTS, "p0.1", "p0.2", "p0.1.1", "p1.1", "p1:2", "p1:2.1", "p2.1", "p3:1", "p3:1.1"]
SCHEDULES = ["s0", "s1", "s2", "s3"]
PIDS = ["w1", "w2"]
TARGETS = ["poll://any@g", "http://127.0.0.1:9/x", "poll://uni@g/w1"]
BAD_ADDRESSES = ["bogus://x", "poll://all@g", "poll://any@", "not an address"]
CRONS = ["* * * * *", "*/2 * * * *", "*/10 * * * * *", "0 0 * * *"]
BAD_CRONS = ["bad cron", "61 * * * *", "0 0 30 2 *"]
WRONG = [None, 1.5, True, "x", [], {}, -1, 2**70]


def origin(id: str) -> str:
    return re.split(r"[.:]", id, maxsplit=1)[0]


def ancestors(id: str) -> list[str]:
    """``p1:2.1`` → ``[p1, p1:2, p1:2.1]``: every prefix that ends before a separator."""
    return [id[:i] for i, c in enumerate(id) if c in ".:"] + [id]


def pick(draw: Draw, items: list[Any]) -> Any:
    return draw(st.sampled_from(items))


def chance(draw: Draw, p: float) -> bool:
    # Hypothesis favours (and shrinks towards) 0, so 0 must mean the likely outcome: rare
    # events stay rare and a shrunk failure keeps only the unusual choices it needs.
    n = draw(st.integers(0, 999))
    return bool(n < int(p * 1000)) if p >= 0.5 else bool(n >= 1000 - int(p * 1000))


def task_id(draw: Draw, m: ReferenceModel, state: str | None) -> str:
    """Mostly a task in ``state`` (if any), else any id of the pool."""
    ids = sorted(t.id for t in m.tasks.values() if state is None or t.state == state)
    if ids and chance(draw, 0.85):
        return str(pick(draw, ids))
    return existing(draw, m.tasks, IDS, 0.6)


def version(draw: Draw, m: ReferenceModel, id: str) -> int:
    t = m.tasks.get(id)
    if t is not None and chance(draw, 0.85):
        return t.version
    return int(draw(st.integers(0, 3)))


def timeout_at(draw: Draw, now: int) -> int:
    return now + int(pick(draw, [-1000, 0, 5000, 20000, 45000, 60000, 300000, 10**8]))


def tags_for(
    draw: Draw, id: str, now: int, deadline: int, target: bool | None = None
) -> dict[str, str]:
    tags: dict[str, str] = {}
    if target is None:
        target = chance(draw, 0.7)
    if target:
        tags["resonate:target"] = pick(draw, TARGETS if chance(draw, 0.95) else BAD_ADDRESSES)
    if chance(draw, 0.15):
        tags["resonate:timer"] = pick(draw, ["true", "false"])
    family = ancestors(id)
    if chance(draw, 0.3):
        tags["resonate:origin"] = family[0] if chance(draw, 0.9) else "p9"
    if chance(draw, 0.6):
        tags["resonate:branch"] = pick(draw, family) if chance(draw, 0.95) else ""
    if chance(draw, 0.2):
        tags["resonate:parent"] = pick(draw, family)
    if chance(draw, 0.1):
        tags["resonate:prefix"] = "p0" if chance(draw, 0.8) else "a.b"
    if chance(draw, 0.15):
        tags["resonate:delay"] = pick(
            draw,
            [
                str(now + 10000),
                "+" + str(now + 40000),
                str(now + 20000),
                str(now - 1),
                str(deadline),
                "soon",
            ],
        )
    if chance(draw, 0.2):
        tags["k"] = pick(draw, ["a", "b"])
    return tags


def create_data(
    draw: Draw, m: ReferenceModel, now: int, target: bool | None = None, id: str | None = None
) -> dict[str, Any]:
    id = id if id is not None else pick(draw, IDS)
    deadline = timeout_at(draw, now)
    d: dict[str, Any] = {
        "id": id,
        "timeoutAt": deadline,
        "tags": tags_for(draw, id, now, deadline, target),
    }
    if chance(draw, 0.4):
        d["param"] = pick(
            draw, [{}, {"data": "eA=="}, {"headers": {"h": "1"}, "data": "eQ=="}, {"headers": {}}]
        )
    return d


def settle_data(draw: Draw, id: str) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": id,
        "state": pick(draw, ["resolved", "rejected", "rejected_canceled"]),
    }
    if chance(draw, 0.5):
        d["value"] = pick(draw, [{}, {"data": "dg=="}, {"headers": {"a": "b"}}])
    return d


def action(kind: str, data: Any) -> dict[str, Any]:
    return {"kind": kind, "head": {}, "data": data}


def existing(draw: Draw, ids: Any, pool: list[str], p: float = 0.75) -> str:
    """Mostly one of ``ids`` (ids that exist now), else any of ``pool``."""
    have = sorted(ids)
    return str(pick(draw, have)) if have and chance(draw, p) else str(pick(draw, pool))


def awaitable(draw: Draw, m: ReferenceModel, of: str) -> str:
    """Mostly an existing promise of the same origin as ``of``, pending if possible."""
    family = sorted(i for i in m.promises if origin(i) == origin(of) and i != of)
    pending = [i for i in family if m.promises[i].pending]
    if pending and chance(draw, 0.7):
        return str(pick(draw, pending))
    return same_origin_id(draw, m, of)


def same_origin_id(draw: Draw, m: ReferenceModel, of: str) -> str:
    """Mostly an id of the same origin as ``of`` (existing, pooled, or a new child of it)."""
    have = sorted(i for i in m.promises if origin(i) == origin(of) and i != of)
    if have and chance(draw, 0.8):
        return str(pick(draw, have))
    family = sorted(
        {i for i in [*IDS, *m.promises] if origin(i) == origin(of) and i != of}
        | {of + ".1", of + ":2"}
    )
    return str(pick(draw, family)) if chance(draw, 0.93) else str(pick(draw, IDS))


# -- one generator per kind ---------------------------------------------------------------------
def g_promise_get(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": existing(draw, m.promises, IDS)}


def g_promise_create(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    if chance(draw, 0.06):  # a delayed start (§0 item 1), valid on purpose
        id = pick(draw, IDS)
        delay = now + int(pick(draw, [10_000, 40_000]))
        tags = {"resonate:target": pick(draw, TARGETS), "resonate:delay": str(delay)}
        return {"id": id, "timeoutAt": now + 10**8, "tags": tags}
    # Mostly a child of a running task: something for it to await (suspend, callbacks).
    acquired = sorted(t.id for t in m.tasks.values() if t.state == "acquired")
    live = sorted(t.id for t in m.tasks.values() if t.state != "fulfilled")
    parents = acquired if acquired and chance(draw, 0.7) else live
    if parents and chance(draw, 0.6):
        return create_data(draw, m, now, id=f"{pick(draw, parents)}.{pick(draw, [1, 2])}")
    return create_data(draw, m, now)


def g_promise_settle(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    pending = sorted(p.id for p in m.promises.values() if p.pending)
    awaited = [i for i in pending if m.promises[i].awaiters or m.promises[i].listeners]
    if awaited and chance(draw, 0.5):  # someone waits on it: the settlement chain runs
        return settle_data(draw, pick(draw, awaited))
    id = pick(draw, pending) if pending and chance(draw, 0.8) else pick(draw, IDS)
    return settle_data(draw, id)


def g_promise_register_callback(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    # A suspended awaiter and an already settled awaited: the direct resumption (§0 item 3).
    pairs = sorted(
        (i, t.id)
        for t in m.tasks.values()
        if t.state == "suspended"
        for i, p in m.promises.items()
        if not p.pending and origin(i) == origin(t.id) and i != t.id
    )
    if pairs and chance(draw, 0.5):
        awaited, awaiter = pick(draw, pairs)
        return {"awaited": awaited, "awaiter": awaiter}
    awaiter = task_id(draw, m, pick(draw, ["suspended", "acquired", "pending", None]))
    return {"awaited": awaitable(draw, m, awaiter), "awaiter": awaiter}


def g_promise_register_listener(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    address = pick(
        draw,
        ["poll://uni@l/1", "poll://any@l", "http://127.0.0.1:9/l"]
        if chance(draw, 0.9)
        else BAD_ADDRESSES,
    )
    pending = sorted(p.id for p in m.promises.values() if p.pending)
    awaited = (
        pick(draw, pending) if pending and chance(draw, 0.7) else existing(draw, m.promises, IDS)
    )
    return {"awaited": awaited, "address": address}


def _search(draw: Draw, default: dict[str, Any]) -> dict[str, Any]:
    d = dict(default)
    if chance(draw, 0.5):
        d["limit"] = pick(draw, [1, 2, 3, 100, 1000] if chance(draw, 0.9) else [0, 1001, -5])
    if chance(draw, 0.3):
        d["cursor"] = pick(draw, [*IDS, *SCHEDULES])
    return d


def g_promise_search(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if chance(draw, 0.4):
        d["state"] = pick(
            draw, ["pending", "resolved", "rejected", "rejected_canceled", "rejected_timedout"]
        )
    if chance(draw, 0.3):
        d["tags"] = pick(
            draw, [{}, {"k": "a"}, {"resonate:target": "poll://any@g"}, {"resonate:branch": "p0"}]
        )
    return _search(draw, d)


def g_task_get(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": task_id(draw, m, None)}


def g_task_create(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    data = create_data(draw, m, now, target=chance(draw, 0.9))
    if "resonate:delay" in data["tags"] and chance(draw, 0.7):
        del data["tags"]["resonate:delay"]
    return {
        "pid": pick(draw, PIDS),
        "ttl": pick(draw, [1000, 20000, 60000]),
        "action": action("promise.create", data),
    }


def g_task_acquire(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    id = task_id(draw, m, "pending")
    return {
        "id": id,
        "version": version(draw, m, id),
        "pid": pick(draw, PIDS),
        "ttl": pick(draw, [1000, 20000, 60000]),
    }


def g_task_release(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    id = task_id(draw, m, "acquired")
    return {"id": id, "version": version(draw, m, id)}


def g_task_fulfill(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    id = task_id(draw, m, "acquired")
    inner = id if chance(draw, 0.95) else pick(draw, IDS)
    return {
        "id": id,
        "version": version(draw, m, id),
        "action": action("promise.settle", settle_data(draw, inner)),
    }


def g_task_suspend(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    pending = [p.id for p in m.promises.values() if p.pending]
    ready = sorted(
        t.id
        for t in m.tasks.values()
        if t.state == "acquired" and any(origin(i) == origin(t.id) and i != t.id for i in pending)
    )
    id = pick(draw, ready) if ready and chance(draw, 0.8) else task_id(draw, m, "acquired")
    n = 0 if chance(draw, 0.03) else 1 if chance(draw, 0.6) else draw(st.integers(2, 3))
    actions = [
        action(
            "promise.register_callback",
            {
                "awaited": awaitable(draw, m, id),
                "awaiter": id if chance(draw, 0.97) else pick(draw, IDS),
            },
        )
        for _ in range(n)
    ]
    settled = sorted(
        i for i, p in m.promises.items() if not p.pending and origin(i) == origin(id) and i != id
    )
    if settled and actions and chance(draw, 0.25):  # the 300 answer
        actions.append(
            action("promise.register_callback", {"awaited": pick(draw, settled), "awaiter": id})
        )
    return {"id": id, "version": version(draw, m, id), "actions": actions}


def g_task_fence(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    id = task_id(draw, m, "acquired")
    kind = pick(draw, ["promise.create", "promise.settle"] * 8 + ["promise.get"])
    other = same_origin_id(draw, m, id) if chance(draw, 0.85) else f"{id}:9"  # maybe absent
    if kind == "promise.create":
        inner: Any = create_data(draw, m, now, id=other)
    else:
        inner = settle_data(draw, other)
    if chance(draw, 0.05):
        inner = pick(draw, [[], "x", {"id": 5}, {"id": other}])
    request = {"id": id, "version": version(draw, m, id), "action": action(kind, inner)}
    # Sustain's "sustain:preload" opt-out, in one draw (drawn last, so the draws above keep
    # their order): absent (0 is the likely outcome), true, false, or rarely a wrong type.
    n = draw(st.integers(0, 99))
    if n >= 97:
        request["sustain:preload"] = [None, 0, "false"][n - 97]
    elif n >= 40:
        request["sustain:preload"] = n < 60
    return request


def g_task_heartbeat(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    acquired = sorted(t.id for t in m.tasks.values() if t.state == "acquired")
    first = pick(draw, acquired) if acquired and chance(draw, 0.8) else pick(draw, IDS)
    refs = [{"id": first, "version": version(draw, m, first)}]
    if chance(draw, 0.3):
        other = same_origin_id(draw, m, first)
        refs.append({"id": other, "version": version(draw, m, other)})
    pid = m.tasks[first].pid if first in m.tasks and chance(draw, 0.8) else None
    return {"pid": pid or pick(draw, PIDS), "tasks": refs}


def g_task_halt(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": task_id(draw, m, pick(draw, ["pending", "acquired", "suspended", None]))}


def g_task_continue(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": task_id(draw, m, "halted")}


def g_task_search(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if chance(draw, 0.5):
        d["state"] = pick(draw, ["pending", "acquired", "suspended", "halted", "fulfilled"])
    return _search(draw, d)


def g_schedule_get(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": existing(draw, m.schedules, SCHEDULES)}


def g_schedule_create(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    target = pick(draw, TARGETS) if chance(draw, 0.95) else pick(draw, BAD_ADDRESSES)
    tags = {"resonate:target": target}
    if chance(draw, 0.3):
        tags["k"] = pick(draw, ["a", "b"])
    if chance(draw, 0.1):
        tags["resonate:timer"] = "true"
    d: dict[str, Any] = {
        "id": pick(draw, SCHEDULES),
        "cron": pick(draw, CRONS) if chance(draw, 0.9) else pick(draw, BAD_CRONS),
        "promiseId": pick(draw, ["{{.id}}.{{.timestamp}}", "{{.id}}", "p3", "sp.{{.timestamp}}"]),
        "promiseTimeout": pick(draw, [0, 30000, 90000, 10**7]),
        "promiseTags": tags,
    }
    if chance(draw, 0.3):
        d["promiseParam"] = {"data": "cw=="}
    return d


def g_schedule_delete(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    return {"id": existing(draw, m.schedules, SCHEDULES)}


def g_schedule_search(draw: Draw, m: ReferenceModel, now: int) -> dict[str, Any]:
    d: dict[str, Any] = {}
    if chance(draw, 0.3):
        d["tags"] = pick(draw, [{"k": "a"}, {"resonate:target": "poll://any@g"}])
    return _search(draw, d)


GENERATORS: dict[str, tuple[int, Gen]] = {
    # kind: (weight, generator)
    "promise.create": (12, g_promise_create),  # first: what hypothesis draws most
    "task.create": (6, g_task_create),
    "promise.get": (3, g_promise_get),
    "promise.settle": (6, g_promise_settle),
    "promise.register_callback": (5, g_promise_register_callback),
    "promise.register_listener": (3, g_promise_register_listener),
    "promise.search": (2, g_promise_search),
    "task.get": (3, g_task_get),
    "task.acquire": (8, g_task_acquire),
    "task.release": (3, g_task_release),
    "task.fulfill": (4, g_task_fulfill),
    "task.suspend": (6, g_task_suspend),
    "task.fence": (5, g_task_fence),
    "task.heartbeat": (3, g_task_heartbeat),
    "task.halt": (3, g_task_halt),
    "task.continue": (3, g_task_continue),
    "task.search": (2, g_task_search),
    "schedule.get": (2, g_schedule_get),
    "schedule.create": (3, g_schedule_create),
    "schedule.delete": (2, g_schedule_delete),
    "schedule.search": (1, g_schedule_search),
}
# Round-robin by weight: hypothesis favours small indices, so every kind appears early once.
KIND_CHOICES = [
    k
    for r in range(max(w for w, _ in GENERATORS.values()))
    for k, (w, _) in GENERATORS.items()
    if w > r
]

# What a kind needs to succeed: a task in this state, or a schedule.
_NEEDS: dict[str, str] = {
    "task.acquire": "pending",
    "task.release": "acquired",
    "task.fulfill": "acquired",
    "task.suspend": "acquired",
    "task.fence": "acquired",
    "task.heartbeat": "acquired",
    "task.continue": "halted",
    "schedule.get": "schedule",
    "schedule.delete": "schedule",
}


def choose_kind(draw: Draw, m: ReferenceModel) -> str:
    """A weighted kind, mostly among those the current state lets succeed."""
    have = {t.state for t in m.tasks.values()} | ({"schedule"} if m.schedules else set())
    # Suspension is the protocol's richest path and needs a lucky state: take it when it comes.
    if _can_suspend(m) and chance(draw, 0.2):
        return "task.suspend"
    if "halted" in have and chance(draw, 0.15):  # halted tasks are few: continue them
        return "task.continue"
    if chance(draw, 0.9):
        able = [k for k in KIND_CHOICES if _NEEDS.get(k) is None or _NEEDS[k] in have]
        return str(pick(draw, able))
    return str(pick(draw, KIND_CHOICES))


def mutate(draw: Draw, data: dict[str, Any]) -> dict[str, Any]:
    """Make a request wrong in one place: a field missing, of a wrong type, or empty."""
    if not data:
        return {"unexpected": 1}
    key = pick(draw, sorted(data))
    out = dict(data)
    how = pick(draw, ["drop", "wrong", "empty"])
    if how == "drop":
        del out[key]
    elif how == "wrong":
        out[key] = pick(draw, WRONG)
    else:
        out[key] = "" if isinstance(out[key], str) else pick(draw, WRONG)
    return out


def _can_suspend(m: ReferenceModel) -> bool:
    pending = [p.id for p in m.promises.values() if p.pending]
    return any(
        t.state == "acquired" and any(origin(i) == origin(t.id) and i != t.id for i in pending)
        for t in m.tasks.values()
    )
