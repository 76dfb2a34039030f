"""``Sustain.retry``: one ``sustain.retry`` request (engine/retry.py) and its errors, typed.

The server (or the embedded store) does the whole fork in one transaction; this module only
sends it and turns a refusal into ``RetryRefusedError`` with the ids as attributes.
"""

from __future__ import annotations

import re
from typing import Any

from sustain.errors import FunctionNotFoundError, InvalidIdError, RetryRefusedError, ServerError
from sustain.sdk import codec, ids
from sustain.sdk.network import Network
from sustain.sdk.registry import Registry

KIND = "sustain.retry"
_STATE = re.compile(r"^Promise is (\w+):")


def request(id: str, new_id: str | None, from_step: int | None) -> dict[str, Any]:
    """The request's data, checked before sending (``InvalidIdError``, ``ValueError``)."""
    ids.validate_child(id)
    data: dict[str, Any] = {"id": id}
    if new_id is not None:
        ids.validate_child(new_id)
        if ids.extends(new_id, id) or ids.extends(id, new_id):
            raise InvalidIdError(new_id, f"a retry's id must not be {id!r}, above it or below it")
        if ids.origin_of(id) == id:
            ids.validate_root(new_id)  # a root's retry is a root: its children join with ':'
        elif ids.origin_of(new_id) == new_id:
            raise InvalidIdError(new_id, f"the retry of {id!r} must contain '.' or ':' like it")
        data["newId"] = new_id
    if from_step is not None:
        if isinstance(from_step, bool) or not isinstance(from_step, int) or from_step < 1:
            raise ValueError(f"from_step must be a positive integer, not {from_step!r}")
        data["fromStep"] = from_step
    return data


def returns(registry: Registry, promise: dict[str, Any]) -> Any:
    """The return annotation of the retried function when it is registered here (the
    handle converts the result to it, as ``run``'s does), else None."""
    name = codec.recorded_func(promise.get("param"))
    try:
        return registry.get(name).returns if name is not None else None
    except FunctionNotFoundError:
        return None


async def send(network: Network, data: dict[str, Any]) -> dict[str, Any]:
    """The answer's data (``promise``, ``copied``, ``created``), or the refusal raised."""
    answer = await network.request(KIND, data)
    if answer.status == 200:
        result: dict[str, Any] = answer.data
        return result
    raise refusal(data, answer.status, str(answer.data))


def refusal(data: dict[str, Any], status: int, message: str) -> Exception:
    """What a refused ``sustain.retry`` raises in the SDK."""
    id = str(data["id"])
    if status == 404:
        return RetryRefusedError(id, "no such execution")
    if status == 422:
        return RetryRefusedError(id, "it is not an execution (no resonate:target tag)")
    if status == 409:
        state = _STATE.match(message)
        if state is not None:
            reason = f"it is {state.group(1)}: only a failed (rejected, timed out or canceled) "
            return RetryRefusedError(id, reason + "execution is retried", state.group(1))
        if message == "Already exists":
            return RetryRefusedError(id, f"{data.get('newId')!r} already holds another promise")
        return RetryRefusedError(id, message)
    return ServerError(status, message, KIND)
