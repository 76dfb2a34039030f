"""@resonatehq/sdk 0.11.5 (the official TypeScript SDK, generator API), unmodified, against
``sustain serve``, on the machine's Node 20 with ``ts/polyfill.cjs`` preloaded.

``ts/app.mjs`` is the program; its only Sustain-specific input is the URL.  One driver runs
the cases concurrently (it is the worker of its own group too) and a second process serves
another group for the remote calls.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.interop.harness import Launcher, wait_for_line
from tests.servers import unique

# A first run builds the SDKs' environment (pip, npm) inside the first test's setup.
pytestmark = pytest.mark.timeout(600)


def test_typescript_sdk_runs_steps_sleep_and_rpc(launch: Launcher) -> None:
    other = unique("ts-other")
    wait_for_line(launch.node("worker", "--group", other), "WORKER")
    ids = {name: unique(name) for name in ("two", "sleep", "remote", "rpc", "begin")}
    ids["dotted"] = unique("my.app.flow")  # a dotted root id, as the SDK's docs show
    driver = launch.node_cases(unique("ts-main"), [
        {"name": "two", "op": "run", "id": ids["two"], "func": "ts_two_steps", "args": [1]},
        {"name": "sleep", "op": "run", "id": ids["sleep"], "func": "ts_sleeper", "args": [2000]},
        {"name": "remote", "op": "run", "id": ids["remote"], "func": "ts_call_remote",
         "args": [other, 2, 3]},
        {"name": "rpc", "op": "rpc", "id": ids["rpc"], "func": "ts_add", "args": [5, 6],
         "target": other},
        {"name": "begin", "op": "beginRpc", "id": ids["begin"], "func": "ts_add", "args": [7, 8],
         "target": other},
        {"name": "dotted", "op": "run", "id": ids["dotted"], "func": "ts_call_remote",
         "args": [other, 1, 1]},
    ])  # fmt: skip
    results = driver.wait_results(["two", "sleep", "remote", "rpc", "begin", "dotted"])

    def value(name: str) -> Any:
        assert results[name]["ok"], f"{results[name]}\n{driver.output()}"
        return results[name]["value"]

    assert value("two") == [10, 20]
    assert 1900 <= value("sleep") < 60_000
    assert value("remote") == [5, 6]  # ctx.beginRpc, then ctx.rpc, in another group
    assert value("rpc") == 11  # top-level rpc
    assert value("begin") == {"id": ids["begin"], "result": 15}  # top-level beginRpc
    assert value("dotted") == [2, 3]
    assert driver.wait(30) == 0, driver.output()

    # The same ids from a new process: the stored results come back.
    again = launch.node_cases(unique("ts-main"), [
        {"name": "two", "op": "run", "id": ids["two"], "func": "ts_two_steps", "args": [1]},
        {"name": "rpc", "op": "rpc", "id": ids["rpc"], "func": "ts_add", "args": [5, 6],
         "target": other},
    ])  # fmt: skip
    repeated = again.wait_results(["two", "rpc"])
    assert repeated["two"]["value"] == [10, 20]
    assert repeated["rpc"]["value"] == 11
