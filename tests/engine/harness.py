"""Drive ``Engine.apply`` on a ``MemoryStore`` with explicit times, answers as builtins."""

from __future__ import annotations

from typing import Any

import msgspec

from sustain.engine import Engine, EngineConfig, Outcome
from sustain.store.memory import MemoryStore

T = "poll://any@workers"
R = 30_000


class Harness:
    def __init__(self, *, debug: bool = True, retry: int = R) -> None:
        self.engine = Engine(EngineConfig(retry_timeout=retry, debug=debug))
        self.store = MemoryStore()
        self.now = 1_000

    def outcome(
        self, kind: str, data: dict[str, Any], now: int | None = None, **kw: Any
    ) -> Outcome:
        at = self.now if now is None else now
        self.now = at
        return self.store.run(lambda tx: self.engine.apply(tx, kind, data, at, "corr", **kw))

    def call(
        self, kind: str, data: dict[str, Any], now: int | None = None, **kw: Any
    ) -> tuple[int, Any]:
        o = self.outcome(kind, data, now, **kw)
        return o.status, msgspec.to_builtins(o.data)

    def ok(self, kind: str, data: dict[str, Any], now: int | None = None) -> Any:
        status, body = self.call(kind, data, now)
        assert status == 200, (status, body)
        return body

    def error(self, kind: str, data: dict[str, Any], now: int | None = None) -> tuple[int, str]:
        status, body = self.call(kind, data, now)
        assert status >= 300, (status, body)
        return status, body

    def snap(self) -> Any:
        return self.ok("debug.snap", {})

    def tick(self, time: int) -> Any:
        self.now = time
        return self.ok("debug.tick", {"time": time}, time)

    # -- builders ---------------------------------------------------------------------------
    def create(
        self,
        id: str,
        timeout_at: int = 1_000_000,
        tags: dict[str, str] | None = None,
        now: int | None = None,
        **extra: Any,
    ) -> Any:
        data: dict[str, Any] = {"id": id, "timeoutAt": timeout_at, "tags": tags or {}, **extra}
        return self.ok("promise.create", data, now)["promise"]

    def task(self, id: str, timeout_at: int = 1_000_000, **tags: str) -> Any:
        """A pending target promise with its pending task v0."""
        return self.create(id, timeout_at, {"resonate:target": T, **tags})

    def acquire(self, id: str, version: int = 0, pid: str = "w1", ttl: int = 60_000) -> Any:
        return self.ok("task.acquire", {"id": id, "version": version, "pid": pid, "ttl": ttl})

    def get_task(self, id: str) -> Any:
        return self.ok("task.get", {"id": id})["task"]

    def get_promise(self, id: str) -> Any:
        return self.ok("promise.get", {"id": id})["promise"]

    def suspend(self, id: str, version: int, *awaited: str) -> tuple[int, Any]:
        actions = [
            {"kind": "promise.register_callback", "head": {}, "data": {"awaited": a, "awaiter": id}}
            for a in awaited
        ]
        return self.call("task.suspend", {"id": id, "version": version, "actions": actions})

    def settle(self, id: str, state: str = "resolved", now: int | None = None, **extra: Any) -> Any:
        return self.ok("promise.settle", {"id": id, "state": state, **extra}, now)["promise"]


def settle_action(id: str, state: str = "resolved") -> dict[str, Any]:
    return {"kind": "promise.settle", "head": {}, "data": {"id": id, "state": state}}


def executes(snap: Any) -> list[tuple[str, str, int]]:
    return [
        (m["address"], m["message"]["data"]["task"]["id"], m["message"]["data"]["task"]["version"])
        for m in snap["messages"]
        if m["message"]["kind"] == "execute"
    ]


def unblocks(snap: Any) -> list[tuple[str, str]]:
    return [
        (m["address"], m["message"]["data"]["promise"]["id"])
        for m in snap["messages"]
        if m["message"]["kind"] == "unblock"
    ]
