"""Bad input: clear errors, raised before any request, and no hot loop on a worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sustain import Context, FunctionNotFoundError, InvalidIdError
from tests.sdk.conftest import Make, unique


def test_unregistered_function_is_a_clear_error(make: Make) -> None:
    sustain = make()

    def never_registered(ctx: Context) -> None: ...

    with pytest.raises(FunctionNotFoundError, match="'nope'"):
        sustain.run(unique("x"), "nope")
    with pytest.raises(FunctionNotFoundError, match="never_registered"):
        sustain.run(unique("x"), never_registered)


@pytest.mark.parametrize("bad", ["", "a\x00b", "has.dot", "has:colon", 7])
def test_invalid_id_raises_before_any_request(make: Make, bad: Any) -> None:
    sustain = make()
    sustain.register(lambda ctx: 1, name="one")
    with pytest.raises(InvalidIdError):
        sustain.run(bad, "one")
    with pytest.raises(InvalidIdError):
        sustain.rpc(bad, "one")
    assert not sustain._core.started  # nothing was sent: the network never even started


def test_unknown_function_on_a_worker_is_halted_not_looped(make: Make) -> None:
    sustain = make(on_code_mismatch="fail")  # today's behaviour (the default pauses it)
    id = unique("unknown")
    handle = sustain.rpc(id, "not_registered_anywhere")
    deadline = time.monotonic() + 60
    state = None
    while time.monotonic() < deadline:
        answer = sustain._bridge(sustain.network.request("task.get", {"id": id}))
        state = answer.data["task"]["state"] if answer.status == 200 else None
        if state == "halted":
            break
        time.sleep(0.1)
    assert state == "halted"
    with pytest.raises(FunctionNotFoundError, match="not_registered_anywhere"):
        handle.result(timeout=60)  # the handle's probe sees the halted task
    assert sustain.promises.get(id)["state"] == "pending"
