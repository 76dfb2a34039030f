"""The facade: mode selection from the environment, schedules, options, graceful stop."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from sustain import Context, Sustain
from sustain.runtime.clock import Clock
from sustain.sdk.local import LocalNetwork
from sustain.sdk.remote import RemoteNetwork
from tests.sdk.conftest import Make, unique


@pytest.mark.parametrize("var", ["SUSTAIN_URL", "RESONATE_URL"])
def test_environment_picks_remote_mode(monkeypatch: pytest.MonkeyPatch, var: str) -> None:
    monkeypatch.delenv("SUSTAIN_URL", raising=False)
    monkeypatch.delenv("RESONATE_URL", raising=False)
    monkeypatch.setenv(var, "http://127.0.0.1:9")
    remote = Sustain()
    assert isinstance(remote.network, RemoteNetwork)
    assert remote.network.url == "http://127.0.0.1:9"
    assert isinstance(Sustain(store=":memory:").network, LocalNetwork)  # explicit store wins
    monkeypatch.delenv(var)
    assert isinstance(Sustain(store=":memory:").network, LocalNetwork)


class MovableClock(Clock):
    def __init__(self) -> None:
        super().__init__()
        self.offset = 0

    def now(self) -> int:
        return super().now() + self.offset


def test_schedule_fires_and_can_be_deleted(tmp_path: Any) -> None:
    clock = MovableClock()
    network = LocalNetwork(":memory:", clock=clock)
    with Sustain(network=network, group=unique("g")) as sustain:
        ran: list[int] = []

        @sustain.register
        def job(ctx: Context, n: int) -> int:
            ran.append(n)
            return n

        name = unique("nightly")
        schedule = sustain.schedule(name, "* * * * *", job, 5)
        assert schedule["id"] == name and schedule["promiseId"] == "{{.id}}.{{.timestamp}}"
        assert sustain.schedules.get(name)["cron"] == "* * * * *"
        assert any(s["id"] == name for s in sustain.schedules.search()["schedules"])
        clock.offset = 61_000
        sustain._core.loop().loop.call_soon_threadsafe(network.wake_timers)
        deadline = time.monotonic() + 30
        while not ran and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ran[:1] == [5]
        fired = sustain.promises.search(tags={"resonate:schedule": name})["promises"]
        assert fired and fired[0]["id"].startswith(f"{name}.")
        sustain.schedules.delete(name)
        with pytest.raises(Exception, match="404"):
            sustain.schedules.get(name)


def test_options_set_target_timeout_tags_and_version(make: Make) -> None:
    sustain = make()

    def greet(ctx: Context, who: str) -> str:
        return f"hello {who} (v{ctx.info.version})"

    sustain.register(greet, version=1)
    sustain.register(greet, name="greet", version=2)
    id = unique("opt")
    view = sustain.options(target=sustain.group, timeout=timedelta(hours=1), tags={"team": "a"})
    assert view.options(version=1).rpc(id, "greet", "ann").result(timeout=30) == "hello ann (v1)"
    record = sustain.promises.get(id)
    assert record["tags"]["team"] == "a"
    assert record["tags"]["resonate:target"] == f"poll://any@{sustain.group}"
    assert record["timeoutAt"] - record["createdAt"] <= 3_600_000 + 1000
    assert sustain.rpc(unique("v"), "greet", "bo").result(timeout=30) == "hello bo (v2)"


def test_stop_drains_in_flight_work(make: Make) -> None:
    sustain = make()
    started, release = threading.Event(), threading.Event()

    def slow(ctx: Context) -> str:
        started.set()
        release.wait(30)
        return "finished"

    sustain.register(slow)
    id = unique("drain")
    handle = sustain.run(id, slow)
    assert started.wait(30)
    threading.Timer(0.2, release.set).start()
    sustain.stop()  # returns only after the running task fulfilled
    assert handle.done()
    assert handle.result() == "finished"


def test_rejected_and_canceled_promises_reach_the_workflow(make: Make) -> None:
    from sustain import ApplicationError, CanceledError

    sustain = make()

    @sustain.register
    async def wait_twice(ctx: Context) -> Any:
        outcomes = []
        for _ in range(2):
            try:
                await ctx.promise()
            except CanceledError as exc:
                outcomes.append(["canceled", exc.id])
            except ApplicationError as exc:
                outcomes.append(["rejected", exc.message])
        return outcomes

    from tests.sdk.test_context import wait_pending

    id = unique("rej")
    handle = sustain.run(id, wait_twice)
    wait_pending(sustain, f"{id}:1")
    assert sustain.promises.reject(f"{id}:1", "no budget")["state"] == "rejected"
    wait_pending(sustain, f"{id}:2")
    assert sustain.promises.cancel(f"{id}:2")["state"] == "rejected_canceled"
    assert handle.result(timeout=30) == [["rejected", "no budget"], ["canceled", f"{id}:2"]]
