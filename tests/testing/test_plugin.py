"""The ``sustain_env`` fixture as a user gets it: a project of their own, run by pytest in a
child process (``pytester``), where the plugin is found through its entry point alone.

A 30-day durable sleep and a week of an hourly cron schedule each take well under a second
of wall time; timers, retries, human-in-the-loop promises and the call tree behave as on a
real clock.
"""

from __future__ import annotations

import pytest

USER_TESTS = """
import time
from datetime import timedelta

import pytest
from sustain import Constant, Context

MONTH = timedelta(days=30)


def add_one(ctx: Context, x: int) -> int:
    return x + 1


def monthly(ctx: Context, x: int):
    y = yield ctx.run(add_one, x)
    before = yield ctx.now()
    yield ctx.sleep(MONTH)
    after = yield ctx.now()
    z = yield ctx.run(add_one, y)
    return z, after - before


def test_a_thirty_day_sleep_returns_at_once(sustain_env):
    started = time.perf_counter()
    handle = sustain_env.options(timeout=timedelta(days=31)).run(monthly, 1)
    result, slept = handle.result(timeout=30)
    wall = time.perf_counter() - started
    assert result == 3
    assert slept == MONTH.total_seconds()  # ctx.now() follows the virtual clock
    assert wall < 1.0, wall
    tree = sustain_env.tree(handle.id)
    assert [c.kind for c in tree.children] == ["run", "run", "sleep", "run", "run"]


def test_the_root_times_out_on_virtual_time_as_in_production(sustain_env):
    handle = sustain_env.run(monthly, 1)  # a top-level call lives one day by default
    with pytest.raises(Exception, match="timed out|timeout"):
        handle.result(timeout=30)


ticks = []


def tick(ctx: Context, label: str) -> str:
    ticks.append((label, ctx.info.id))
    return label


@pytest.mark.sustain_env(auto_skip=False)
def test_a_week_of_hourly_ticks_in_well_under_a_second(sustain_env):
    sustain_env.register(tick)
    sustain_env.sustain.schedule("hourly", "0 * * * *", tick, "x")
    started = time.perf_counter()
    sustain_env.advance(timedelta(days=7))
    wall = time.perf_counter() - started
    assert len(ticks) == 7 * 24
    stamps = [int(id.rsplit(".", 1)[1]) for _, id in ticks]
    assert stamps == sorted(stamps)  # fired in order, one hour apart
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {3_600_000}
    assert wall < 1.0, wall


@pytest.mark.sustain_env(auto_skip=False)
def test_advance_fires_only_what_is_due(sustain_env):
    def nap(ctx: Context, hours: int):
        yield ctx.sleep(timedelta(hours=hours))
        return hours

    short, long = sustain_env.run(nap, 1), sustain_env.run(nap, 5)
    sustain_env.advance(timedelta(hours=2))
    assert short.done() and short.result() == 1
    assert not long.done()
    sustain_env.advance(timedelta(hours=3))
    assert long.result(timeout=10) == 5


attempts = []


def flaky(ctx: Context) -> str:
    attempts.append(ctx.info.attempt)
    if len(attempts) < 3:
        raise ConnectionError("down")
    return "up"


def test_retries_back_off_on_virtual_time(sustain_env):
    def call(ctx: Context):
        before = yield ctx.now()
        value = yield ctx.options(retry=Constant(delay=3600, max_retries=5)).run(flaky)
        after = yield ctx.now()
        return value, after - before

    started = time.perf_counter()
    value, waited = sustain_env.run(call).result(timeout=30)
    assert value == "up" and attempts == [1, 2, 3]
    assert waited >= 2 * 3600  # two hour-long backoffs passed...
    assert time.perf_counter() - started < 1.0  # ...in no time


def blocking(ctx: Context) -> str:
    time.sleep(0.3)  # real work: the clock must wait for it, not jump past it
    return "done"


def test_a_blocking_step_holds_the_clock_still(sustain_env):
    def nap(ctx: Context):
        yield ctx.sleep(timedelta(hours=12))  # the next deadline while the step blocks

    def work(ctx: Context):
        before = yield ctx.now()
        yield ctx.run(blocking)
        after = yield ctx.now()
        return after - before

    napping = sustain_env.run(nap)
    assert sustain_env.run(work).result(timeout=30) < 60
    napping.result(timeout=30)


def test_rpc_by_name_goes_through_the_store(sustain_env):
    sustain_env.register(add_one)
    handle = sustain_env.rpc("add_one", 41)
    assert handle.result(timeout=10) == 42
    assert sustain_env.sustain.promises.get(handle.id)["state"] == "resolved"


@pytest.mark.sustain_env(auto_skip=False)
def test_a_human_in_the_loop(sustain_env):
    def approve(ctx: Context, order: str):
        decision = yield ctx.promise()
        return f"{order}:{decision}"

    handle = sustain_env.run(approve, "o-1")
    sustain_env.settle()
    (waiting,) = [c for c in sustain_env.tree(handle.id).children if c.kind == "promise"]
    sustain_env.resolve(waiting.id, "yes")
    assert handle.result(timeout=10) == "o-1:yes"
"""


@pytest.mark.slow
def test_the_fixture_as_a_user_runs_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)


def test_the_plugin_is_registered_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    found = {e.name: e.value for e in entry_points(group="pytest11")}
    assert found.get("sustain") == "sustain.testing.plugin"
