"""Retry a failed execution over a real server and a real worker (issue 17 item 4).

A ``sustain worker tests.scenarios.fork_app:sustain`` process serves the group; the test
process is the client.  ``pipeline`` fails in the second leaf of its third step; the test
counts how often each leaf ran.  ``Sustain.retry`` (SDK over HTTP) runs only the failing
leaf and the later steps; ``sustain retry --from-step 2`` (CLI) runs step 2 onwards again
and takes step 1 over.  Retrying what did not fail is refused with one line and exit 1.
The new executions point back to the failed one in ``sustain tree``.  The test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sustain import NonRetryableError, Sustain
from tests.scenarios.fork_app import runs
from tests.scenarios.processes import SUSTAIN, Store, scenario_server, sustain_worker
from tests.servers import ServerProcess, unique

APP = "tests.scenarios.fork_app:sustain"
RESULT = ["one", "two", ["three-a", "three-b"], "four"]


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SUSTAIN, "-S", server.url, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def served(tmp_path: Path, store: Store) -> Iterator[tuple[ServerProcess, Sustain, str, Path]]:
    """A server on ``store``, a worker of the workflow's group marking runs in ``marks``,
    and a client; all stopped after the test (the conftest reaps the worker)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    server = scenario_server(tmp_path, store=store)
    client = Sustain(url=server.url, group=unique("client"))
    try:
        group = unique("fork")
        env = {"SUSTAIN_URL": server.url, "FORK_MARKS": str(marks)}
        sustain_worker(APP, group, tmp_path / "worker.log", env)
        yield server, client, group, marks
    finally:
        client.stop()
        server.stop()


@pytest.mark.slow
def test_retry_runs_only_what_did_not_resolve(
    served: tuple[ServerProcess, Sustain, str, Path],
) -> None:
    server, client, group, marks = served
    root = unique("order")
    with pytest.raises(NonRetryableError, match="three-b is broken"):
        client.options(target=group).rpc(root, "pipeline").result(timeout=60)
    assert runs(marks) == {"one": 1, "two": 1, "three-a": 1, "three-b": 1}

    # The fix is deployed: the retry takes over steps 1, 2 and the first leaf of step 3.
    (marks / "fixed").touch()
    handle = client.retry(root)
    assert handle.id == f"{root}~retry-1"
    assert handle.result(timeout=60) == RESULT
    assert runs(marks) == {"one": 1, "two": 1, "three-a": 1, "three-b": 2, "four": 1}

    # From a named step (the CLI): step 1 is taken over, steps 2 to 4 run again.
    done = cli(server, "retry", root, "--from-step", "2", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["promise"]["id"] == f"{root}~retry-2"
    assert runs(marks) == {"one": 1, "two": 2, "three-a": 2, "three-b": 3, "four": 2}

    # The new execution points back to the failed one.
    tree = cli(server, "tree", f"{root}~retry-1")
    assert tree.returncode == 0, tree.stderr
    assert f"retry of {root}" in tree.stdout
    old = cli(server, "tree", root)
    assert f"retried as {root}~retry-1, {root}~retry-2" in old.stdout
    page = httpx.get(f"{server.url}/ui/execution", params={"id": f"{root}~retry-2"}).text
    assert f'Retry of <a href="/ui/execution?id={root}">' in page

    # Bad input: one line, exit 1, nothing started.
    resolved = cli(server, "retry", f"{root}~retry-1")
    assert resolved.returncode == 1
    assert resolved.stderr.strip() == (
        f"Error: Promise is resolved: only a failed execution is retried: {root}~retry-1"
    )
    missing = cli(server, "retry", "no-such-order")
    assert (missing.returncode, missing.stderr.strip()) == (
        1, "Error: Promise not found: no-such-order",
    )  # fmt: skip
    bad = cli(server, "retry", root, "--id", f"{root}:x")
    assert bad.returncode == 1
    assert "newId must not be id, above it or below it" in bad.stderr
    assert runs(marks)["four"] == 2

    # A named new id: said once, and asking again is the same retry, not another run.
    named = cli(server, "retry", root, "--id", f"{root}-again")
    assert named.returncode == 0, named.stderr
    new = f"{root}-again"
    assert named.stdout.splitlines() == [
        f"retrying {root} as {new}: 3 resolved promise(s) taken over",
        f"  {new}:1", f"  {new}:2", f"  {new}:3.1",
    ]  # fmt: skip
    again = cli(server, "retry", root, "--id", f"{root}-again")
    assert (again.returncode, again.stdout) == (0, "")
    assert again.stderr.strip() == f"Note: {root}-again already retries {root}: nothing started"
    assert client.get(f"{root}-again").result(timeout=60) == RESULT
    assert runs(marks) == {"one": 1, "two": 2, "three-a": 2, "three-b": 4, "four": 3}
