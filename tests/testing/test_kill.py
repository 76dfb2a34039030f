"""``kill_test``: a real ``sustain serve``, a real ``sustain worker`` process SIGKILLed after
one and after two settled steps, a fresh worker with the same pid recovering at once, and
the same result as the run that was never killed."""

from __future__ import annotations

from pathlib import Path

import pytest

from sustain.testing import kill_test
from tests.servers import start_server

APP = """
import time

from sustain import Context, Sustain

sustain = Sustain()  # the worker's -S decides where it connects


def slow_double(ctx: Context, x: int) -> int:
    time.sleep(0.3)  # long enough for the kill to land inside a step
    return 2 * x


@sustain.register
def chain(ctx: Context, x: int):
    a = yield ctx.run(slow_double, x)
    b = yield ctx.run(slow_double, a)
    c = yield ctx.run(slow_double, b)
    return c
"""


@pytest.mark.slow
def test_a_sigkilled_worker_is_recovered_with_the_same_result(tmp_path: Path) -> None:
    (tmp_path / "kill_app.py").write_text(APP)
    server = start_server(tmp_path)
    try:
        report = kill_test(
            server.url, "kill_app:sustain", "chain", (3,), kill_after=(1, 2),
            logs=tmp_path, cwd=tmp_path, timeout=60,
        )  # fmt: skip
    finally:
        server.stop()
    assert report.outcome == 24
    assert [k.k for k in report.kills] == [1, 2]
    assert all(k.outcome == 24 for k in report.kills)
    assert all(k.settled >= k.k for k in report.kills)  # killed mid-execution, not after
    assert all(k.settled < 4 for k in report.kills)
