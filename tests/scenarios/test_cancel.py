"""Cancelling an execution tree over a real server and real workers (issue 17 item 3).

Two ``sustain worker tests.scenarios.cancel_app:sustain`` processes serve groups A and B;
the test process is the client.  ``tree`` (on A) runs an async leaf, a sync leaf and a
retried failing leaf, an rpc child on B and a detached call on B, all running when
``handle.cancel()`` is called.  The cancel settles the root and every pending descendant
but the detached call ``rejected_canceled``; the workers stop: the async leaves (A's and
B's) see ``asyncio.CancelledError``, the retries end, the sync leaf runs to its end and its
result is dropped.  A second cancel is a no-op that says so; ``sustain cancel`` cancels the
detached call when asked.  Every wait is for an event (a mark file, a log line), never for
time.  The test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import pytest

from sustain import CanceledError, ServerError, Sustain
from tests.scenarios.processes import (
    SUSTAIN,
    Proc,
    Store,
    scenario_server,
    sustain_worker,
    wait_until,
)
from tests.servers import ServerProcess, unique

APP = "tests.scenarios.cancel_app:sustain"
STOPPED = "its promise was settled elsewhere"


def count(marks: Path, what: str) -> int:
    path = marks / what
    return len(path.read_text().splitlines()) if path.exists() else 0


def state(server: ServerProcess, id: str) -> str:
    return str(server.ok("promise.get", {"id": id})["promise"]["state"])


def pending_of(server: ServerProcess, origin: str) -> list[str]:
    query = {"state": "pending", "tags": {"resonate:origin": origin}, "limit": 1000}
    return sorted(p["id"] for p in server.ok("promise.search", query)["promises"])


def workers(tmp: Path, server: ServerProcess, marks: Path) -> tuple[str, str, Proc, Proc]:
    a, b = unique("a"), unique("b")
    env = {"SUSTAIN_URL": server.url, "CANCEL_MARKS": str(marks), "CANCEL_OTHER": b}
    worker_a = sustain_worker(APP, a, tmp / "a.log", env)
    return a, b, worker_a, sustain_worker(APP, b, tmp / "b.log", env)


@pytest.mark.slow
def test_cancel_a_running_tree(tmp_path: Path, store: Store) -> None:
    server = scenario_server(tmp_path, store=store)
    client: Sustain | None = None
    try:
        marks = tmp_path / "marks"
        marks.mkdir()
        group_a, _, worker_a, worker_b = workers(tmp_path, server, marks)
        client = Sustain(url=server.url, group=unique("client"))
        root = unique("tree")
        handle = client.options(target=group_a).rpc(root, "tree")
        for what in ("async-start", "sync-start", "remote-start", "detached-start"):
            wait_until(lambda w=what: count(marks, w) == 1, what=what)  # type: ignore[misc]
        wait_until(lambda: count(marks, "flaky") >= 2, what="a retry")
        (detached,) = [i for i in pending_of(server, root) if re.fullmatch(rf"{root}:d\w{{16}}", i)]

        report = handle.cancel()
        # The root first, then its pending descendants; the detached call is left alone.
        assert report.canceled == (root, f"{root}:1", f"{root}:2", f"{root}:3", f"{root}:4")
        assert (report.state, report.noop) == ("pending", False)
        with pytest.raises(CanceledError):
            handle.result(timeout=60)
        assert pending_of(server, root) == [detached]

        # Both workers stop their passes: async leaves are interrupted, the retries end.
        wait_until(lambda: STOPPED in worker_a.output(), what="worker A stopping the pass")
        wait_until(lambda: STOPPED in worker_b.output(), what="worker B stopping the pass")
        wait_until(lambda: count(marks, "async-cancelled") == 1, what="async leaf cancelled")
        wait_until(lambda: count(marks, "remote-cancelled") == 1, what="rpc child cancelled")
        flaky_runs = count(marks, "flaky")
        # The sync leaf cannot be interrupted: it runs to its end, its result is dropped.
        (marks / "gate").touch()
        wait_until(lambda: count(marks, "sync-end") == 1, what="sync leaf finished")
        for id in (f"{root}:1", f"{root}:2", f"{root}:3", f"{root}:4"):
            assert state(server, id) == "rejected_canceled"
        step = server.ok("promise.get", {"id": f"{root}:2"})["promise"]
        assert step["value"] == {}  # "sync result" was never written

        # Idempotent: a second cancel writes nothing and says why.
        again = handle.cancel()
        assert again.noop
        assert again.message() == f"{root} is already rejected_canceled: nothing to cancel"
        cli = subprocess.run(
            [SUSTAIN, "-S", server.url, "cancel", root], capture_output=True, text=True, check=False
        )
        assert cli.returncode == 0, cli.stderr
        assert cli.stderr.strip() == f"Note: {root} is already rejected_canceled: nothing to cancel"

        # The detached call still runs until it is cancelled by its own id.
        assert count(marks, "detached-cancelled") == 0
        cli = subprocess.run(
            [SUSTAIN, "-S", server.url, "cancel", detached],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stderr
        assert f"canceled {detached} and 0 pending descendant(s)" in cli.stdout
        wait_until(lambda: count(marks, "detached-cancelled") == 1, what="detached cancelled")
        assert pending_of(server, root) == []

        # Every leaf ran once (the failing one until the cancel), and nothing restarted them.
        for what in ("async-start", "sync-start", "remote-start", "detached-start", "sync-end"):
            assert count(marks, what) == 1, what
        assert count(marks, "flaky") == flaky_runs
        assert worker_a.alive() and worker_b.alive()
    finally:
        if client is not None:
            client.stop()
        Proc.reap()
        server.stop()


@pytest.mark.slow
def test_cancel_a_child_wakes_its_parent_with_canceled_error(tmp_path: Path) -> None:
    server = scenario_server(tmp_path)
    client: Sustain | None = None
    try:
        marks = tmp_path / "marks"
        marks.mkdir()
        group_a, _, _, _ = workers(tmp_path, server, marks)
        client = Sustain(url=server.url, group=unique("client"))
        root = unique("parent")
        handle = client.options(target=group_a).rpc(root, "parent")
        wait_until(lambda: count(marks, "child-start") == 1, what="the child running")
        report = client.cancel(f"{root}:1")
        assert report.canceled == (f"{root}:1",)
        assert handle.result(timeout=60) == "saw CanceledError"
        wait_until(lambda: count(marks, "child-cancelled") == 1, what="child interrupted")
        with pytest.raises(ServerError) as missing:
            client.cancel(unique("nobody"))
        assert (missing.value.status, missing.value.message) == (404, "Promise not found")
    finally:
        if client is not None:
            client.stop()
        Proc.reap()
        server.stop()


def test_cancel_from_the_ui(tmp_path: Path) -> None:
    """No worker: a tree of raw promises, the UI's confirm page, then the cancel."""
    server = scenario_server(tmp_path)
    try:
        _cancel_from_the_ui(server)
    finally:
        server.stop()


def _cancel_from_the_ui(server: ServerProcess) -> None:
    root = unique("ui")
    far = 9_000_000_000_000

    def create(id: str, target: bool = False) -> None:
        tags = {"resonate:origin": root}
        if target:
            tags["resonate:target"] = "poll://any@nobody"
        server.ok("promise.create", {"id": id, "timeoutAt": far, "tags": tags})

    create(root, target=True)
    create(f"{root}:1")
    create(f"{root}:1.1")
    create(f"{root}:2", target=True)
    detached = f"{root}:d0123456789abcdef"
    create(detached, target=True)
    create(f"{detached}.1")
    with httpx.Client(base_url=server.url, headers={"origin": server.url}) as http:
        review = http.post("/ui/execution/cancel", data={"id": root})
        assert review.status_code == 200 and "Confirm: cancel" in review.text
        done = http.post("/ui/execution/cancel", data={"id": root, "confirmed": "1"})
        assert done.status_code == 303
        canceled = [f"{root}", f"{root}:1", f"{root}:1.1", f"{root}:2"]
        assert [state(server, id) for id in canceled] == ["rejected_canceled"] * 4
        assert pending_of(server, root) == [detached, f"{detached}.1"]
        noop = http.post("/ui/execution/cancel", data={"id": root, "confirmed": "1"})
        assert noop.status_code == 200
        assert "is already rejected_canceled: nothing to cancel" in noop.text
        missing = http.post("/ui/execution/cancel", data={"id": "nobody", "confirmed": "1"})
        assert missing.status_code == 404 and "Promise not found" in missing.text
        cross = http.post(
            "/ui/execution/cancel", data={"id": root}, headers={"origin": "http://evil"}
        )
        assert cross.status_code == 403
