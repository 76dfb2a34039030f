"""Retry a failed execution (issue 17 item 4) embedded, on a real SQLite file.

``pipeline`` runs four steps: a leaf, an rpc child, a child workflow of two leaves (the
second fails until the test "deploys the fix") and a last leaf.  Each leaf counts its runs.
``Sustain.retry`` must not run again what resolved in the failed run: the steps before the
failure, and inside the failed child workflow its first leaf; with ``from_step`` only the
steps before it are taken over.  Bad input: an unknown, pending or resolved execution, and
ids that cannot hold a retry, are refused with typed errors before anything is written.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from sustain import (
    ApplicationError,
    Context,
    InvalidIdError,
    NonRetryableError,
    RetryRefusedError,
    Sustain,
)
from tests.sdk.conftest import unique

RUNS: Counter[str] = Counter()
FIXED: set[str] = set()


def leaf(ctx: Context, name: str) -> str:
    RUNS[name] += 1
    if name == "three-b" and "fixed" not in FIXED:
        raise NonRetryableError("three-b is broken until the fix is deployed")
    return name


async def remote_leaf(ctx: Context, name: str) -> str:
    return leaf(ctx, name)


async def child_workflow(ctx: Context) -> list[str]:
    return [await ctx.run(leaf, "three-a"), await ctx.run(leaf, "three-b")]


async def pipeline(ctx: Context) -> list[object]:
    one = await ctx.run(leaf, "one")
    two = await ctx.rpc(remote_leaf, "two")
    three = await ctx.run(child_workflow)
    four = await ctx.run(leaf, "four")
    return [one, two, three, four]


@pytest.fixture
def sustain(tmp_path: Path) -> Sustain:
    RUNS.clear()
    FIXED.clear()
    s = Sustain(str(tmp_path / "fork.db"), group=unique("fork"))
    s.register(pipeline)
    s.register(remote_leaf)
    return s


def failed_run(sustain: Sustain) -> str:
    id = unique("wf")
    with pytest.raises(ApplicationError, match="three-b is broken"):
        sustain.run(id, pipeline).result(timeout=30)
    assert dict(RUNS) == {"one": 1, "two": 1, "three-a": 1, "three-b": 1}
    return id


def test_retry_takes_over_every_child_that_resolved(sustain: Sustain) -> None:
    with sustain:
        id = failed_run(sustain)
        FIXED.add("fixed")
        handle = sustain.retry(id)
        assert handle.id == f"{id}~retry-1"
        assert handle.result(timeout=30) == ["one", "two", ["three-a", "three-b"], "four"]
        # Only the failing leaf and what comes after it ran again.
        assert dict(RUNS) == {"one": 1, "two": 1, "three-a": 1, "three-b": 2, "four": 1}
        root = sustain.promises.get(handle.id)
        assert root["tags"]["sustain:retry-of"] == id
        assert root["tags"]["resonate:origin"] == handle.id
        # the copies: the resolved steps 1 and 2, and the resolved leaf of the failed step 3
        copied = sustain.promises.get(f"{handle.id}:3.1")
        assert (copied["state"], copied["tags"]["resonate:branch"]) == ("resolved", handle.id)
        assert sustain.promises.get(f"{id}:3.2")["state"] == "rejected"  # the old run stays


def test_retry_from_a_named_step_runs_that_step_and_the_later_ones(sustain: Sustain) -> None:
    with sustain:
        id = failed_run(sustain)
        FIXED.add("fixed")
        handle = sustain.retry(id, from_step=2)
        assert handle.result(timeout=30) == ["one", "two", ["three-a", "three-b"], "four"]
        assert dict(RUNS) == {"one": 1, "two": 2, "three-a": 2, "three-b": 2, "four": 1}
        # from step 1 nothing is taken over; the next derived id counts on
        again = sustain.retry(id, from_step=1)
        assert again.id == f"{id}~retry-2"
        again.result(timeout=30)
        assert dict(RUNS) == {"one": 2, "two": 3, "three-a": 3, "three-b": 3, "four": 2}


def test_retry_is_awaitable_and_a_given_id_is_idempotent(sustain: Sustain) -> None:
    with sustain:
        id = failed_run(sustain)
        FIXED.add("fixed")
        new_id = unique("again")

        async def retry_twice() -> tuple[str, str, object]:
            first = await sustain.retry(id, new_id=new_id)
            second = await sustain.retry(id, new_id=new_id)  # the same retry, not another
            return first.id, second.id, await first

        first, second, result = asyncio.run(retry_twice())
        assert first == second == new_id
        assert result == ["one", "two", ["three-a", "three-b"], "four"]
        assert RUNS["four"] == 1


def test_retrying_what_did_not_fail_is_refused(sustain: Sustain) -> None:
    with sustain:
        with pytest.raises(RetryRefusedError, match="no such execution") as missing:
            sustain.retry("nothing-here")
        assert (missing.value.id, missing.value.state) == ("nothing-here", None)

        FIXED.add("fixed")
        done = unique("done")
        sustain.run(done, pipeline).result(timeout=30)
        with pytest.raises(RetryRefusedError, match="it is resolved") as resolved:
            sustain.retry(done)
        assert (resolved.value.id, resolved.value.state) == (done, "resolved")

        waiting = unique("waiting")
        sustain.promises.create(waiting, timeout=60, tags={"resonate:target": "poll://any@x"})
        with pytest.raises(RetryRefusedError, match="it is pending") as pending:
            sustain.retry(waiting)
        assert pending.value.state == "pending"

        plain = unique("plain")
        sustain.promises.create(plain, timeout=60)
        sustain.promises.reject(plain, "no")
        with pytest.raises(RetryRefusedError, match="not an execution"):
            sustain.retry(plain)

        failed = unique("failed")
        FIXED.clear()
        with pytest.raises(ApplicationError):
            sustain.run(failed, pipeline).result(timeout=30)
        with pytest.raises(RetryRefusedError, match="already holds another promise"):
            sustain.retry(failed, new_id=done)


@pytest.mark.parametrize(
    ("new_id", "from_step", "error"),
    [
        ("a:b", None, InvalidIdError),  # a root's retry is a root
        ("", None, InvalidIdError),
        ("SAME", None, InvalidIdError),
        (None, 0, ValueError),
        (None, True, ValueError),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    sustain: Sustain, new_id: str | None, from_step: int | None, error: type[Exception]
) -> None:
    id = unique("wf")
    with sustain, pytest.raises(error):
        sustain.retry(id, new_id=id if new_id == "SAME" else new_id, from_step=from_step)
