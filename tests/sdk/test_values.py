"""Values cross the durability boundary as SDK-WIRE JSON and come back as annotated."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest

from sustain import ApplicationError, Context, SerializationError
from sustain.sdk import codec
from tests.sdk.conftest import Make, unique


@dataclass
class Order:
    id: str
    amount: int
    items: list[str]


def make_order(ctx: Context, n: int) -> Order:
    return Order(f"o{n}", n * 10, ["a", "b"])


def test_dataclass_round_trips_by_annotation(make: Make) -> None:
    sustain = make()

    @sustain.register
    async def wf(ctx: Context, n: int) -> Order:
        order = await ctx.run(make_order, n)
        assert isinstance(order, Order)
        return Order(order.id, order.amount + 1, order.items)

    id = unique("dc")
    assert sustain.run(id, wf, 2).result(timeout=30) == Order("o2", 21, ["a", "b"])
    stored = sustain.promises.get(id)["value"]["data"]
    assert json.loads(base64.b64decode(stored)) == {"id": "o2", "amount": 21, "items": ["a", "b"]}


class Point(pydantic.BaseModel):
    x: int
    y: int


def test_pydantic_model_round_trips(make: Make) -> None:
    def point(ctx: Context) -> Point:
        return Point(x=1, y=2)

    sustain = make()

    @sustain.register
    async def wf(ctx: Context) -> Point:
        p = await ctx.run(point)
        return Point(x=p.x + 1, y=p.y)

    assert sustain.run(unique("pyd"), wf).result(timeout=30) == Point(x=2, y=2)


def test_errors_cross_with_their_class_and_message(make: Make) -> None:
    sustain = make()

    def fail(ctx: Context) -> None:
        raise KeyError("no such customer")

    @sustain.register
    def wf(ctx: Context) -> Any:
        try:
            yield ctx.options(retry=codec_never()).run(fail)
        except KeyError as exc:
            return [type(exc).__name__, str(exc), exc.args[0]]
        return None

    assert sustain.run(unique("err"), wf).result(timeout=30) == [
        "KeyError", "'no such customer'", "no such customer",
    ]  # fmt: skip


def codec_never() -> Any:
    from sustain import Never

    return Never()


def test_non_serializable_values_fail_only_that_call(make: Make) -> None:
    sustain = make()

    def opaque(ctx: Context) -> object:
        return object()

    def ok(ctx: Context) -> str:
        return "still running"

    @sustain.register
    async def wf(ctx: Context) -> Any:
        seen = []
        try:
            await ctx.rpc("anything", object())
        except SerializationError as exc:
            seen.append(type(exc).__name__)
        try:
            await ctx.run(opaque)
        except SerializationError as exc:
            seen.append(type(exc).__name__)
        seen.append(await ctx.run(ok))
        return seen

    result = sustain.run(unique("ser"), wf).result(timeout=30)
    assert result == ["SerializationError", "SerializationError", "still running"]
    with pytest.raises(SerializationError):
        sustain.run(unique("ser-root"), wf, object())


def test_wire_encoding_matches_sdk_wire() -> None:
    value = codec.encode({"a": [1, 2]})
    assert json.loads(base64.b64decode(value["data"])) == {"a": [1, 2]}
    param = codec.encode_invocation("f", (1,), {"k": "v"}, 1)
    assert json.loads(base64.b64decode(param["data"])) == {
        "func": "f", "args": [1], "kwargs": {"k": "v"}, "version": 1,
    }  # fmt: skip
    err = codec.error_of(codec.decode(codec.encode_error(ValueError("boom"))))
    assert (type(err), str(err)) == (ValueError, "boom")
    ts_error = {"__type": "error", "message": "from ts", "stack": "...", "name": "TypeError"}
    from_ts = codec.error_of(ts_error)
    assert isinstance(from_ts, ApplicationError)
    assert (from_ts.message, from_ts.name, from_ts.type) == ("from ts", "TypeError", "TypeError")
    assert codec.decode({}) is None and codec.decode({"data": ""}) is None


class Duck:
    """Shaped like a pydantic model (``model_dump`` / ``model_validate``) without pydantic."""

    def __init__(self, name: str) -> None:
        self.name = name

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def model_validate(cls, data: dict[str, Any]) -> Duck:
        return cls(data["name"])


def test_model_like_objects_use_their_dump_and_validate() -> None:
    value = codec.encode(Duck("donald"))
    assert codec.decode(value) == {"name": "donald"}
    rebuilt = codec.convert(codec.decode(value), Duck)
    assert isinstance(rebuilt, Duck) and rebuilt.name == "donald"
    assert codec.convert({"id": "o", "amount": 1, "items": []}, Order) == Order("o", 1, [])
