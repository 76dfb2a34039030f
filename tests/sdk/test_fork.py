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
from dataclasses import dataclass
from pathlib import Path

import pytest

from sustain import (
    Context,
    InvalidIdError,
    NonRetryableError,
    RetryRefusedError,
    Sustain,
)
from tests.scenarios import fork_app as app
from tests.sdk.conftest import unique


@pytest.fixture
def sustain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sustain:
    """An embedded Sustain on a SQLite file serving the scenario's workflow (fork_app.py),
    whose leaves mark their runs in ``tmp_path``."""
    monkeypatch.setattr(app, "MARKS", tmp_path)
    s = Sustain(str(tmp_path / "fork.db"), group=unique("fork"))
    s.register(app.pipeline)
    s.register(app.remote_leaf)
    return s


def runs() -> dict[str, int]:
    return app.runs(app.MARKS)


def deploy_the_fix() -> None:
    (app.MARKS / "fixed").touch()


def failed_run(sustain: Sustain) -> str:
    id = unique("wf")
    with pytest.raises(NonRetryableError, match="three-b is broken"):
        sustain.run(id, app.pipeline).result(timeout=30)
    assert runs() == {"one": 1, "two": 1, "three-a": 1, "three-b": 1}
    return id


def test_retry_takes_over_every_child_that_resolved(sustain: Sustain) -> None:
    with sustain:
        id = failed_run(sustain)
        deploy_the_fix()
        handle = sustain.retry(id)
        assert handle.id == f"{id}~retry-1"
        assert handle.result(timeout=30) == ["one", "two", ["three-a", "three-b"], "four"]
        # Only the failing leaf and what comes after it ran again.
        assert runs() == {"one": 1, "two": 1, "three-a": 1, "three-b": 2, "four": 1}
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
        deploy_the_fix()
        handle = sustain.retry(id, from_step=2)
        assert handle.result(timeout=30) == ["one", "two", ["three-a", "three-b"], "four"]
        assert runs() == {"one": 1, "two": 2, "three-a": 2, "three-b": 2, "four": 1}
        # from step 1 nothing is taken over; the next derived id counts on
        again = sustain.retry(id, from_step=1)
        assert again.id == f"{id}~retry-2"
        again.result(timeout=30)
        assert runs() == {"one": 2, "two": 3, "three-a": 3, "three-b": 3, "four": 2}


def test_retry_is_awaitable_and_a_given_id_is_idempotent(sustain: Sustain) -> None:
    with sustain:
        id = failed_run(sustain)
        deploy_the_fix()
        new_id = unique("again")

        async def retry_twice() -> tuple[str, str, object]:
            first = await sustain.retry(id, new_id=new_id)
            second = await sustain.retry(id, new_id=new_id)  # the same retry, not another
            return first.id, second.id, await first

        first, second, result = asyncio.run(retry_twice())
        assert first == second == new_id
        assert result == ["one", "two", ["three-a", "three-b"], "four"]
        assert runs()["four"] == 1


def test_retrying_what_did_not_fail_is_refused(sustain: Sustain) -> None:
    with sustain:
        with pytest.raises(RetryRefusedError, match="no such execution") as missing:
            sustain.retry("nothing-here")
        assert (missing.value.id, missing.value.state) == ("nothing-here", None)

        deploy_the_fix()
        done = unique("done")
        sustain.run(done, app.pipeline).result(timeout=30)
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
        (app.MARKS / "fixed").unlink()
        with pytest.raises(NonRetryableError):
            sustain.run(failed, app.pipeline).result(timeout=30)
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


@dataclass
class Receipt:
    order: str
    attempt: int


ATTEMPTS: list[int] = []


def flaky(ctx: Context, order: str) -> int:
    ATTEMPTS.append(len(ATTEMPTS) + 1)
    if len(ATTEMPTS) == 1:
        raise NonRetryableError("the first attempt fails")
    return len(ATTEMPTS)


async def receipt(ctx: Context, order: str) -> Receipt:
    return Receipt(order, await ctx.run(flaky, order))


def test_the_retry_handle_converts_the_result_like_run_does(tmp_path: Path) -> None:
    with Sustain(str(tmp_path / "typed.db"), group=unique("typed")) as sustain:
        sustain.register(receipt)
        id = unique("receipt")
        with pytest.raises(NonRetryableError):
            sustain.run(id, receipt, "42").result(timeout=30)
        assert sustain.retry(id).result(timeout=30) == Receipt("42", 2)
