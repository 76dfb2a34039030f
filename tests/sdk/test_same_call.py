"""An id that already holds another call says so; a step's arguments are recorded (issue 19).

The same id returns the first execution's result whatever the arguments (test_idempotency):
a call whose function or arguments differ from the recorded ones logs a warning naming the
id and both calls, and ``Sustain(strict=True)`` raises ``ArgumentsMismatchError`` instead.
A ``ctx.run`` step's param records its arguments for people (the UI, ``sustain promises
get``), with a note instead when they are large or not JSON.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sustain import ArgumentsMismatchError, Context
from sustain.sdk import codec
from tests.sdk.conftest import Make, unique


def double(ctx: Context, n: int) -> int:
    return n * 2


def test_other_arguments_warn_and_return_the_first_result(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    sustain = make()
    sustain.register(double)
    id = unique("same")
    assert sustain.run(id, double, 21).result(timeout=30) == 42
    with caplog.at_level(logging.WARNING, logger="sustain.sdk.client"):
        assert sustain.run(id, double, 21).result(timeout=30) == 42
        assert not caplog.records  # the same call again: nothing to say
        assert sustain.run(id, double, 99).result(timeout=30) == 42
    (record,) = caplog.records
    assert record.getMessage() == (
        f"promise {id} already holds double(21), not this call's double(99): the same id "
        "returns the first execution's result (Sustain(strict=True) raises instead)"
    )
    assert record.__dict__["promise_id"] == id


def test_strict_raises_with_the_ids_and_calls(make: Make) -> None:
    sustain = make(strict=True)
    sustain.register(double)
    id = unique("strict")
    assert sustain.run(id, double, 1).result(timeout=30) == 2
    with pytest.raises(ArgumentsMismatchError) as raised:
        sustain.run(id, double, n=5).result(timeout=30)
    assert (raised.value.id, raised.value.recorded, raised.value.given) == (
        id, "double(1)", "double(n=5)",
    )  # fmt: skip
    assert sustain.run(id, double, 1).result(timeout=30) == 2  # the same call is fine
    rpc = sustain.options(target=sustain.group)
    with pytest.raises(ArgumentsMismatchError):
        rpc.rpc(id, "double", 2).result(timeout=30)


def test_step_arguments_are_recorded(make: Make) -> None:
    sustain = make()

    def add(ctx: Context, a: int, b: int, *, scale: int = 1) -> int:
        return (a + b) * scale

    def size(ctx: Context, text: str) -> int:
        return len(text)

    def kind(ctx: Context, obj: object) -> str:
        return type(obj).__name__

    def plain(ctx: Context) -> int:
        return 7

    @sustain.register
    def wf(ctx: Context) -> Any:
        total = yield ctx.run(add, 1, 2, scale=3)
        length = yield ctx.run(size, "x" * 10_000)
        name = yield ctx.run(kind, object())
        seven = yield ctx.run(plain)
        return [total, length, name, seven]

    id = unique("steps")
    assert sustain.run(id, wf).result(timeout=30) == [9, 10_000, "object", 7]
    params = [codec.decode(sustain.promises.get(f"{id}:{n}")["param"]) for n in (1, 2, 3, 4)]
    assert params[0] == {"func": "add", "version": 1, "args": [1, 2], "kwargs": {"scale": 3}}
    assert params[1]["argsNote"] == (
        f"arguments truncated: {10_000 + 25} bytes of JSON, first {codec.MAX_RECORDED_ARGS} kept"
    )
    assert params[1]["argsPreview"].startswith('{"args":["xxx')
    assert len(params[1]["argsPreview"]) == codec.MAX_RECORDED_ARGS
    assert "args" not in params[1]
    assert params[2] == {
        "func": "kind", "version": 1, "argsNote": "arguments not JSON-serializable (object)",
    }  # fmt: skip
    assert params[3] == {"func": "plain", "version": 1}  # no arguments: the param as before
    # what an SDK reads from a param is still there (extra fields are ignored)
    assert codec.recorded_func(sustain.promises.get(f"{id}:1")["param"]) == "add"
