"""The status of a step and a paused execution, over a real ``sustain dev`` and real ``sustain
worker`` processes (issue 16 item 2, issue 17 item 5).

* A step that keeps failing in a worker shows its attempts, last error, traceback and next
  retry in ``sustain tree``, ``sustain promises get`` (text and --json), the UI's execution
  page and ``handle.status()`` of another process.
* A worker with changed code pauses an execution whose history it cannot replay (pending,
  the reason in ``sustain tree`` and the UI); a worker with the fixed code resumes it to
  completion.  With ``on_code_mismatch="fail"`` the same change rejects it, as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sustain import ExecutionTimeoutError, NondeterminismError, Sustain
from tests.e2e.cli_harness import SUSTAIN, Server, ok, ok_json, rpc, serving, uid
from tests.scenarios.processes import Proc, wait_until
from tests.servers import start_server
from tests.store.postgres_db import temp_database

APP = "tests.e2e.status_app:sustain"


@pytest.fixture(scope="module", params=["memory", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """``sustain dev`` (in memory), then ``sustain serve`` on a PostgreSQL database of its own:
    the status records and a pause hold on both stores."""
    if request.param == "memory":
        yield from serving(tmp_path_factory)
        return
    with temp_database() as url:
        proc = start_server(
            tmp_path_factory.mktemp("pg"), "--postgres", url, launcher=[str(SUSTAIN)]
        )
        try:
            yield proc
        finally:
            proc.stop()


def worker(server: Server, tmp: Path, group: str, **env: str) -> Proc:
    """A real ``sustain worker`` serving ``group`` with status_app's code."""
    proc = Proc(
        [str(SUSTAIN), "-S", server.url, "worker", APP, "--group", group],
        tmp / f"worker-{uid()}.log",
        env,
    )
    wait_until(lambda: "serving group" in proc.output() or not proc.alive(), 60, "worker")
    assert proc.alive(), proc.output()
    return proc


@pytest.fixture
def caller(server: Server) -> Iterator[Sustain]:
    sustain = Sustain(url=server.url, group=uid("caller"))
    yield sustain
    sustain.stop()


def status_of(server: Server, id: str) -> dict[str, Any]:
    answer = rpc(server, "sustain.status.get", {"ids": [id]})
    return dict(answer["statuses"].get(id) or {})


def test_a_failing_step_is_visible_everywhere(
    server: Server, caller: Sustain, tmp_path: Path
) -> None:
    group = uid("pay")
    proc = worker(server, tmp_path, group)
    try:
        id = uid("checkout")
        handle = caller.options(target=group).rpc(id, "checkout", "4242")
        step = f"{id}:1"
        wait_until(lambda: status_of(server, step).get("attempts", 0) >= 2, 60, "two attempts")

        tree = ok("tree", id, server=server).out
        assert f"{step} (run pay) pending" in tree
        assert "failed: ConnectionError: the card service is down for 4242; next retry " in tree

        shown = ok("promises", "get", step, server=server).out
        assert "attempts" in shown and "last error" in shown and "next retry" in shown
        assert "ConnectionError: the card service is down for 4242" in shown
        assert "in pay" in shown  # the traceback
        as_json = ok_json("promises", "get", step, server=server)
        assert as_json["promise"]["state"] == "pending"
        assert as_json["status"]["attempts"] >= 2
        assert as_json["status"]["errorType"] == "ConnectionError"
        assert as_json["status"]["nextRetryAt"] > as_json["status"]["updatedAt"]

        page = httpx.get(f"{server.url}/ui/execution", params={"id": id}, timeout=30).text
        assert "status-line" in page
        assert "ConnectionError: the card service is down for 4242" in page
        assert "<pre class=traceback>" in page

        with pytest.raises(ExecutionTimeoutError) as waited:  # its worker is another process
            caller.get(id).result(timeout=0.5)
        assert f"step '{step}' (pay), attempt " in str(waited.value)
        assert "failed: ConnectionError: the card service is down for 4242" in str(waited.value)

        status = handle.status()
        assert status.state == "pending" and [s.id for s in status.steps] == [step]
        assert status.steps[0].attempts >= 2
        assert status.steps[0].error_type == "ConnectionError"
        handle.cancel()
    finally:
        proc.stop()


def started(server: Server, caller: Sustain, tmp: Path, group: str) -> str:
    """An ``order`` run by v1 code up to its promise; its worker then stops (a deploy)."""
    first = worker(server, tmp, group)
    try:
        id = uid("order")
        caller.options(target=group).rpc(id, "order", 10)
        wait_until(lambda: exists(server, f"{id}:2"), 60, "the order to reach its promise")
    finally:
        first.stop()
    caller.promises.resolve(f"{id}:2", "approved")
    return id


def exists(server: Server, id: str) -> bool:
    body = {"kind": "promise.get", "head": {"corrId": uid(), "version": "2026-04-01"},
            "data": {"id": id}}  # fmt: skip
    return httpx.post(server.url, json=body, timeout=30).json()["head"]["status"] == 200


def test_changed_code_pauses_and_fixed_code_resumes(
    server: Server, caller: Sustain, tmp_path: Path
) -> None:
    group = uid("orders")
    id = started(server, caller, tmp_path, group)
    changed = worker(server, tmp_path, group, STATUS_CODE="changed")
    try:
        wait_until(lambda: "paused" in status_of(server, id), 60, "the pause record")
        record = status_of(server, id)
        assert record["paused"].startswith("NondeterminismError: ")
        assert f"'{id}:1'" in record["paused"]  # the first diverging step
        assert "'charge'" in record["paused"] and "'refund'" in record["paused"]
        tree = ok("tree", id, server=server).out
        assert "— paused: NondeterminismError" in tree
        page = httpx.get(f"{server.url}/ui/execution", params={"id": id}, timeout=30).text
        assert "<b>Paused</b>: NondeterminismError" in page
        assert caller.get(id).status().paused == record["paused"]
        time.sleep(2)  # released with backoff and taken again: pending, never rejected
        assert caller.promises.get(id)["state"] == "pending"
    finally:
        changed.stop()
    fixed = worker(server, tmp_path, group)  # the fixed deploy
    try:
        assert caller.get(id).result(timeout=120) == ["charged 10", "approved"]
        assert caller.get(id).status().paused is None
        tree = ok("tree", id, server=server).out
        assert "— paused: " not in tree
        assert "— was paused: NondeterminismError" in tree  # kept as history
    finally:
        fixed.stop()


def test_with_mismatches_failing_changed_code_rejects(
    server: Server, caller: Sustain, tmp_path: Path
) -> None:
    group = uid("orders")
    id = started(server, caller, tmp_path, group)
    strict = worker(server, tmp_path, group, STATUS_CODE="changed", STATUS_ON_MISMATCH="fail")
    try:
        with pytest.raises(NondeterminismError) as failure:  # its class, rebuilt here
            caller.get(id).result(timeout=120)
        assert failure.value.recorded == "charge" and failure.value.found == "refund"
        assert status_of(server, id) == {}  # nothing paused
    finally:
        strict.stop()
