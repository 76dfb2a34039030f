"""The two ways the SDK workloads run: embedded, and against a real server with a worker.

``Embedded``: ``Sustain(store=<tmp>/bench.db)`` in the benchmark process (SQLite
``synchronous=FULL``, the default): engine, store, timer and outbox loops and the workflows
all run here; ``call`` is ``sustain.run(id, name, ...)``.

``ServerMode``: a real ``sustain serve`` (``harness.Server``: free 127.0.0.1 port, fresh
SQLite file), a separate worker *process* ``sustain worker benchmarks.sdk_worker:sustain
--group bench``, and the caller in this process, ``Sustain(url=..., group="callers")``;
``call`` is ``caller.options(target="bench").rpc(id, name, ...)``, so every step crosses
HTTP from the worker and every result reaches the caller as an ``unblock`` on its SSE
stream.

Both modes are warmed up before anything is timed: ``ping`` is called until it answers.
In server mode the worker's and the caller's SSE streams connect asynchronously after
``start()``; an execute or unblock sent before a stream is up is dropped (delivery is at
most once), so a warm-up call that does not answer within a few seconds is simply repeated
under a new id.

CPU: ``cpu_seconds()`` is the user + system time of every process of the mode (this
process; in server mode also the server and the worker), so a workload can report CPU per
step: the cost that sets the rate once nothing else is in the way.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Server, clean_env
from benchmarks.sdk_app import GROUP, register
from sustain import Sustain
from sustain.sdk.handles import Handle

_TICKS = os.sysconf("SC_CLK_TCK")
SUSTAIN_CLI = Path(sys.executable).parent / "sustain"


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def pid_cpu(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all threads); 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


class Mode:
    name = ""

    def call(self, id: str, func: str, *args: Any) -> Handle[Any]:
        raise NotImplementedError

    def promise(self, id: str) -> dict[str, Any]:
        raise NotImplementedError

    def cpu_parts(self) -> dict[str, float]:
        return {"caller": self_cpu()}

    def close(self) -> None:
        raise NotImplementedError

    def warm_up(self, attempts: int = 6, wait: float = 5.0) -> None:
        for attempt in range(attempts):
            handle = self.call(f"warm-{attempt}-{time.time_ns()}", "ping")
            with contextlib.suppress(concurrent.futures.TimeoutError, TimeoutError):
                if handle.result(timeout=wait) == "pong":
                    return
        raise RuntimeError(f"{self.name}: warm-up call never answered")

    def __enter__(self) -> Mode:
        try:
            self.warm_up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Embedded(Mode):
    name = "embedded"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="sustain-bench-sdk-"))
        self.sustain = register(Sustain(store=str(self.dir / "bench.db"), group=GROUP))
        self.sustain.start()

    def call(self, id: str, func: str, *args: Any) -> Handle[Any]:
        return self.sustain.run(id, func, *args)

    def promise(self, id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.sustain.promises.get(id)
        return found

    def close(self) -> None:
        try:
            self.sustain.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


class ServerMode(Mode):
    name = "server"

    def __init__(self) -> None:
        self.server = Server().start()
        self.worker: subprocess.Popen[bytes] | None = None
        self.caller: Sustain | None = None
        try:
            self._start_worker()
            self.caller = Sustain(url=self.server.url, group="callers")
            self.caller.start()
            self.view = self.caller.options(target=GROUP)
        except BaseException:
            self.close()
            raise

    def _start_worker(self, timeout: float = 30.0) -> None:
        env = {**clean_env(), "SUSTAIN_URL": self.server.url}
        log_path = self.server.dir / "worker.log"
        cmd = [str(SUSTAIN_CLI), "worker", "benchmarks.sdk_worker:sustain",
               "--group", GROUP, "--level", "warning"]  # fmt: skip
        with log_path.open("wb") as log:
            self.worker = subprocess.Popen(
                cmd, cwd=self.server.dir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while b"serving group" not in log_path.read_bytes():
            if self.worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{log_path.read_text()[-2000:]}")
            time.sleep(0.05)

    def call(self, id: str, func: str, *args: Any) -> Handle[Any]:
        return self.view.rpc(id, func, *args)

    def promise(self, id: str) -> dict[str, Any]:
        assert self.caller is not None
        found: dict[str, Any] = self.caller.promises.get(id)
        return found

    def cpu_parts(self) -> dict[str, float]:
        worker = pid_cpu(self.worker.pid) if self.worker is not None else 0.0
        return {"caller": self_cpu(), "server": self.server.cpu_seconds(), "worker": worker}

    def close(self) -> None:
        try:
            if self.caller is not None:
                self.caller.stop()
        finally:
            if self.worker is not None and self.worker.poll() is None:
                self.worker.terminate()
                try:
                    self.worker.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.worker.kill()
                    self.worker.wait()
            self.server.cleanup()


def open_mode(name: str) -> Mode:
    return Embedded() if name == "embedded" else ServerMode()
