"""Issue 16 item 2: the state of a failing step is visible, durably, through ``handle.status()``.

Every mode (memory, SQLite file, a real server): a step that keeps failing shows its attempt
count, last error type, message and traceback, and its next retry time while it is pending;
a step that succeeds at once writes no record.  A server without the extension (``protocol.
status = false``, as a Resonate server) answers ``Unknown operation``: the step is retried
and finishes all the same, and ``handle.status()`` says that nothing is recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sustain import Context, Exponential, Sustain
from sustain.protocol.status import MAX_TRACEBACK
from sustain.sdk.status import ExecutionStatus, StepStatus
from tests.sdk.conftest import Make, unique
from tests.servers import ServerProcess, start_server

SLOW = Exponential(delay=1.0)  # attempts 1 s apart: the test reads between them


def wait_step(sustain: Sustain, id: str, attempts: int) -> tuple[ExecutionStatus, StepStatus]:
    deadline = time.monotonic() + 60  # a bound on the wait, not an assertion on speed
    while True:
        status = sustain.get(id).status()
        for step in status.steps:
            if step.attempts >= attempts:
                return status, step
        assert time.monotonic() < deadline, status
        time.sleep(0.1)


def test_a_failing_step_shows_its_attempts_and_last_error(make: Make) -> None:
    sustain = make()
    recovered = threading.Event()

    def pay(ctx: Context, card: str) -> str:
        if not recovered.is_set():
            raise ConnectionError(f"the payment service is down for {card}")
        return "paid"

    @sustain.register
    def checkout(ctx: Context, card: str) -> str:
        return str((yield ctx.options(retry=SLOW).run(pay, card)))

    id = unique("checkout")
    handle = sustain.run(id, checkout, "4242")
    status, step = wait_step(sustain, id, 2)
    assert (status.id, status.state, status.recorded, status.paused) == (id, "pending", True, None)
    assert status.own is None  # the workflow itself did not fail
    assert (step.id, step.state) == (f"{id}:1", "pending")
    assert step.error_type == "ConnectionError"
    assert step.message == "the payment service is down for 4242"
    assert step.traceback is not None
    assert step.traceback.rstrip().endswith("ConnectionError: the payment service is down for 4242")
    assert "in pay" in step.traceback  # the frame that raised
    assert step.next_retry_at is not None and step.updated_at is not None
    assert step.next_retry_at > step.updated_at
    again = handle.status()  # the handle that started it tells the same
    assert [s.id for s in again.steps] == [f"{id}:1"] and again.steps[0].attempts >= 2
    recovered.set()
    assert handle.result(timeout=60) == "paid"
    done = handle.status()
    assert (done.state, done.steps) == ("resolved", [])  # only pending steps are listed


async def test_handle_status_is_awaitable_in_async_code(make: Make) -> None:
    sustain = make()

    @sustain.register
    def fine(ctx: Context) -> int:
        return 1

    handle = sustain.run(unique("fine"), fine)
    assert await handle == 1
    status = await handle.status()
    assert (status.state, status.own, status.steps) == ("resolved", None, [])


def test_a_long_traceback_is_truncated_to_its_end(make: Make) -> None:
    sustain = make()

    def deep(ctx: Context, n: int) -> int:
        if n == 0:
            raise ValueError("bottom " + "x" * 10_000)  # a traceback longer than the bound
        return deep(ctx, n - 1)

    @sustain.register
    def wf(ctx: Context) -> int:
        return int((yield ctx.options(retry=SLOW).run(deep, 200)))

    id = unique("deep")
    handle = sustain.run(id, wf)
    _, step = wait_step(sustain, id, 1)
    assert step.traceback is not None
    assert len(step.traceback) <= MAX_TRACEBACK
    assert step.traceback.startswith("…")
    assert step.traceback.rstrip().endswith("x" * 100)  # the end (the exception) is kept
    assert step.message is not None and len(step.message) == 2048
    assert step.message.startswith("bottom x") and step.message.endswith("…")
    handle.cancel()


ATTEMPTS: list[int] = []  # one test uses it, in one process


def down_twice(ctx: Context) -> str:
    ATTEMPTS.append(ctx.info.attempt)
    if ctx.info.attempt <= 2:
        raise ConnectionError("the service is down")
    return "ok"


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without the status extension (``protocol.status = false``), as a Resonate
    server answers it: ``Unknown operation``."""
    tmp: Path = tmp_path_factory.mktemp("plain")
    (tmp / "sustain.toml").write_text("[protocol]\nstatus = false\n")
    proc = start_server(tmp)  # run in tmp: it reads tmp/sustain.toml
    yield proc
    proc.stop()


def test_without_the_extension_the_sdk_falls_back_to_logging(
    plain_server: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    answer = httpx.post(plain_server.url + "/", json={
        "kind": "sustain.status.get", "head": {"corrId": "c", "version": "2026-04-01"},
        "data": {"ids": ["x"]},
    }, timeout=10).json()  # fmt: skip
    assert (answer["head"]["status"], answer["data"]) == (
        400,
        "Unknown operation: sustain.status.get",
    )
    sustain = Sustain(url=plain_server.url, group=unique("g"))
    try:

        @sustain.register
        def wf(ctx: Context) -> str:
            return str((yield ctx.options(retry=Exponential(delay=0.05)).run(down_twice)))

        id = unique("plain")
        with caplog.at_level("INFO", logger="sustain"):
            assert sustain.run(id, wf).result(timeout=60) == "ok"
        assert ATTEMPTS == [1, 2, 3]
        assert "the server keeps no status records" in caplog.text
        assert "failed on attempt 1; retrying" in caplog.text  # the log still tells
        status = sustain.get(id).status()
        assert (status.state, status.recorded, status.steps) == ("resolved", False, [])
    finally:
        sustain.stop()
