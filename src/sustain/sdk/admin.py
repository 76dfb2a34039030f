"""``sustain.promises`` and ``sustain.schedules``: the raw protocol records, for operators
and for the code that settles a human-in-the-loop promise.  Values are plain Python objects
(encoded with the SDK-WIRE codec); answers are the protocol's record dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

from sustain.errors import ApplicationError, ServerError
from sustain.runtime.clock import Clock
from sustain.sdk import codec
from sustain.sdk.network import Network

Bridge = Callable[[Coroutine[Any, Any, Any]], Any]
Net = Callable[[], Coroutine[Any, Any, Network]]


async def _ok(net: Net, kind: str, data: dict[str, Any], *ok: int) -> Any:
    answer = await (await net()).request(kind, data)
    if answer.status not in (ok or (200,)):
        raise ServerError(answer.status, str(answer.data), kind)
    return answer.data


def _ms(clock: Clock, timeout: float | timedelta) -> int:
    """The deadline ``timeout`` from now, on the Sustain's clock."""
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    return clock.now() + int(seconds * 1000)


class Promises:
    def __init__(self, net: Net, bridge: Bridge, clock: Clock) -> None:
        self._net = net
        self._bridge = bridge
        self._clock = clock

    def get(self, id: str) -> Any:
        return self._bridge(self._get(id))

    async def _get(self, id: str) -> dict[str, Any]:
        data: dict[str, Any] = (await _ok(self._net, "promise.get", {"id": id}))["promise"]
        return data

    def create(self, id: str, timeout: float | timedelta = 86400.0, value: Any = None,
               tags: dict[str, str] | None = None) -> Any:  # fmt: skip
        data = {"id": id, "timeoutAt": _ms(self._clock, timeout), "param": codec.encode(value),
                "tags": tags or {}}  # fmt: skip
        return self._bridge(self._promise("promise.create", data))

    def resolve(self, id: str, value: Any = None) -> Any:
        return self._settle(id, "resolved", codec.encode(value))

    def reject(self, id: str, error: BaseException | str = "rejected") -> Any:
        # a reason alone reads back as ApplicationError(reason), in every SDK
        exc = error if isinstance(error, BaseException) else ApplicationError(error)
        return self._settle(id, "rejected", codec.encode_error(exc))

    def cancel(self, id: str) -> Any:
        return self._settle(id, "rejected_canceled", {})

    def _settle(self, id: str, state: str, value: dict[str, Any]) -> Any:
        data = {"id": id, "state": state, "value": value}
        return self._bridge(self._promise("promise.settle", data))

    async def _promise(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = (await _ok(self._net, kind, data))["promise"]
        return record

    def search(self, state: str | None = None, tags: dict[str, str] | None = None,
               limit: int = 100, cursor: str | None = None) -> Any:  # fmt: skip
        data: dict[str, Any] = {"limit": limit, "tags": tags or {}}
        if state is not None:
            data["state"] = state
        if cursor is not None:
            data["cursor"] = cursor
        return self._bridge(_ok(self._net, "promise.search", data))


class Schedules:
    def __init__(self, net: Net, bridge: Bridge) -> None:
        self._net = net
        self._bridge = bridge

    def get(self, id: str) -> Any:
        return self._bridge(self._schedule("schedule.get", {"id": id}))

    def delete(self, id: str) -> Any:
        return self._bridge(_ok(self._net, "schedule.delete", {"id": id}))

    def search(self, limit: int = 100, cursor: str | None = None,
               tags: dict[str, str] | None = None) -> Any:  # fmt: skip
        data: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            data["cursor"] = cursor
        if tags:
            data["tags"] = tags
        return self._bridge(_ok(self._net, "schedule.search", data))

    def create(self, id: str, cron: str, *, promise_id: str, promise_timeout_ms: int,
               param: dict[str, Any], tags: dict[str, str]) -> Any:  # fmt: skip
        data = {"id": id, "cron": cron, "promiseId": promise_id,
                "promiseTimeout": promise_timeout_ms, "promiseParam": param,
                "promiseTags": tags}  # fmt: skip
        return self._bridge(self._schedule("schedule.create", data))

    async def _schedule(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = (await _ok(self._net, kind, data))["schedule"]
        return record
