"""Version routing with real worker processes (issue 21, protocol/versions.py).

A v1 worker and a v2 worker serve one group; executions pinned to v1 and to v2, each
delivered twice (a durable sleep in the middle), only ever run on the worker of their
version: with random routing, 24 deliveries would land right by chance once in 2**24, and a
worker that got a version it lacks would log a release.  An execution pinned to a version no
connected worker serves waits, pending and shown so in the UI, and runs once such a worker
connects.  Official SDK workers are covered in tests/interop/test_version_routing.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sustain import Sustain
from tests.sdk.conftest import unique
from tests.sdk.test_crash import spawn
from tests.servers import ServerProcess

WORKER = [str(Path(sys.executable).parent / "sustain"), "worker", "tests.sdk.version_app:sustain"]


@pytest.fixture
def server(retry_server: ServerProcess) -> ServerProcess:
    return retry_server  # a dropped execute (no worker serves its version) comes back soon


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Sustain]:
    caller = Sustain(url=server.url, group=unique("caller"))  # registers nothing
    yield caller
    caller.stop()


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    stop(started)


Procs = list[subprocess.Popen[bytes]]


def start_worker(
    procs: Procs, server: ServerProcess, group: str, versions: str, out: Path
) -> subprocess.Popen[bytes]:
    """A worker serving ``versions`` of ``job``, once its stream is up; ``procs`` (stopped by
    the fixture) holds it from its start."""
    env = {"SUSTAIN_URL": server.url, "VERSION_GROUP": group, "VERSIONS": versions}
    proc = spawn(WORKER, env, out)
    procs.append(proc)
    deadline = time.monotonic() + 30
    while "serving group" not in out.read_text():
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, out.read_text()
        time.sleep(0.05)
    return proc


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def workers(server: ServerProcess, group: str) -> list[dict[str, object]]:
    listed = httpx.get(f"{server.url}/workers").json()["workers"]
    return [w for w in listed if w["group"] == group]


@pytest.mark.slow
def test_each_execution_only_runs_on_a_worker_of_its_version(
    tmp_path: Path, server: ServerProcess, client: Sustain, procs: Procs
) -> None:
    group = unique("versions")
    one = start_worker(procs, server, group, "1", tmp_path / "v1.out")
    two = start_worker(procs, server, group, "2", tmp_path / "v2.out")
    announced = sorted(str(w["functions"]) for w in workers(server, group))
    assert announced == ["{'job': [1]}", "{'job': [2]}"]
    assert "functions: job v1" in (tmp_path / "v1.out").read_text()  # the worker's banner
    page = httpx.get(f"{server.url}/ui/workers").text  # the UI's Workers page
    assert "<code>job</code> v1" in page and "<code>job</code> v2" in page

    handles = [
        (version, client.options(target=group, version=version).rpc(unique("job"), "job", 0.3))
        for version in (1, 2)
        for _ in range(6)
    ]
    pids = {1: one.pid, 2: two.pid}
    for version, handle in handles:
        assert handle.result(timeout=60) == f"v{version}:{pids[version]}"
        tags = client.promises.get(handle.id)["tags"]
        assert (tags["sustain:function"], tags["sustain:version"]) == ("job", str(version))
    stop(procs)
    for out in ("v1.out", "v2.out"):
        text = (tmp_path / out).read_text()
        assert "releasing it" not in text and "halting" not in text, text


@pytest.mark.slow
def test_an_execution_waits_for_a_worker_of_its_version(
    tmp_path: Path, server: ServerProcess, client: Sustain, procs: Procs
) -> None:
    group = unique("versions")
    start_worker(procs, server, group, "1", tmp_path / "v1.out")
    handle = client.options(target=group, version=3).rpc(unique("job"), "job", 0.1)
    time.sleep(2.5)  # two retry timeouts: the execute was dropped, then dropped again
    record = client.promises.get(handle.id)
    assert record["state"] == "pending"
    page = httpx.get(f"{server.url}/ui/execution", params={"id": handle.id}).text
    assert "waiting for a worker of group" in page and "v3" in page

    start_worker(procs, server, group, "3", tmp_path / "v3.out")
    assert handle.result(timeout=30).startswith("v3:")
    assert "releasing it" not in (tmp_path / "v1.out").read_text()


def test_a_function_registered_after_the_start_is_announced(server: ServerProcess) -> None:
    """A remote stream announces the registry when it opens; a later ``register`` opens it
    again, so work pinned to the new function reaches this process."""
    group = unique("late")
    sustain = Sustain(url=server.url, group=group)
    try:
        sustain.start()  # opens the stream
        deadline = time.monotonic() + 10
        while not workers(server, group):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert workers(server, group)[0]["functions"] == {}

        @sustain.register(version=4)
        def late(ctx: object, n: int) -> int:
            return n + 1

        while workers(server, group)[0]["functions"] != {"late": [4]}:
            assert time.monotonic() < deadline, workers(server, group)
            time.sleep(0.05)
        # pinned (registered here) and sent to the group by promise: only this stream serves it
        handle = sustain.options(target=group).rpc(unique("late"), late, 1)
        assert handle.result(timeout=30) == 2
    finally:
        sustain.stop()


@pytest.mark.slow
def test_an_execution_started_before_any_worker_begins_when_one_connects(
    tmp_path: Path, sdk_server: ServerProcess, procs: Procs
) -> None:
    """``sustain invoke`` before ``sustain worker``: the execute nobody could take is parked
    by the server and handed to the group's first stream that serves it (runtime/poll.py),
    so the run begins when the worker connects, not at the 30 s task retry timeout of this
    server."""
    group = unique("early")
    caller = Sustain(url=sdk_server.url, group=unique("caller"))
    try:
        handle = caller.options(target=group, version=1).rpc(unique("job"), "job", 0.1)
        time.sleep(1.0)  # the execute went out to an empty group
        assert caller.promises.get(handle.id)["state"] == "pending"
        start_worker(procs, sdk_server, group, "1", tmp_path / "v1.out")
        connected = time.monotonic()
        assert handle.result(timeout=20).startswith("v1:")  # well before the retry at 30 s
        assert time.monotonic() - connected < 20
    finally:
        caller.stop()
