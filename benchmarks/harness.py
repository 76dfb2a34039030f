"""A real ``sustain serve`` process for one benchmark run, and what can be read about it.

``Server.start()`` runs ``python -m sustain.server serve`` in a fresh temporary directory (so
no stray ``sustain.toml`` or ``SUSTAIN_*`` variable changes the configuration) on a free
127.0.0.1 port with SQLite at ``<tmp>/bench.db``, metrics off, and waits until ``/ready``
answers 200.  ``stop()`` sends SIGTERM (SIGKILL after a grace period); ``cleanup()`` (or
leaving the ``with`` block) also removes the files.

fsyncs: the server exposes no commit counter over HTTP, so with ``trace_fsync=True`` the
server runs under ``strace -f --seccomp-bpf -e trace=fsync,fdatasync``.  The seccomp filter
stops the process only on those two syscalls, so every other syscall (the whole HTTP path)
runs at full speed; each fsync costs one extra ptrace round trip, small next to the disk
flush itself.  ``fsyncs_between(t0, t1)`` counts the calls that started in a wall-clock
window, from strace's ``-ttt`` timestamps; read it after ``stop()``, when strace has written
everything.  The server's pid is then strace's child.

CPU, run-queue wait and memory come from ``/proc/<pid>/stat``, ``/proc/<pid>/task/*/schedstat``
and ``/proc/<pid>/status`` of the server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def strace_available() -> bool:
    return shutil.which("strace") is not None


def clean_env() -> dict[str, str]:
    """This environment without ``SUSTAIN_*`` settings, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Server:
    def __init__(self, *, trace_fsync: bool = False, extra: tuple[str, ...] = ()) -> None:
        self.trace_fsync = trace_fsync and strace_available()
        self.extra = extra
        self.dir = Path(tempfile.mkdtemp(prefix="sustain-bench-"))
        self.db = self.dir / "bench.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self._strace_log = self.dir / "fsync.strace"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.dir / "server.log"
        self.pid = 0

    def start(self, timeout: float = 30.0) -> Server:
        cmd = [
            sys.executable, "-m", "sustain.server", "serve",
            "--bind", "127.0.0.1", "--port", str(self.port),
            "--sqlite-path", str(self.db), "--metrics", "false", "--level", "warning",
            *self.extra,
        ]  # fmt: skip
        if self.trace_fsync:
            trace = ["strace", "-f", "--seccomp-bpf", "-qq", "-ttt"]
            cmd = [*trace, "-e", "trace=fsync,fdatasync", "-o", str(self._strace_log), *cmd]
        with self._log.open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, cwd=self.dir, env=clean_env(), stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_ready(timeout)
            self.pid = self._server_pid()
        except BaseException:
            self.cleanup()  # nothing of a failed start may outlive it
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "ready", timeout=1) as answer:
                return int(answer.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def _server_pid(self) -> int:
        assert self._proc is not None
        if not self.trace_fsync:
            return self._proc.pid
        # Under strace the server is strace's only direct child.
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children").read_text()
        return int(children.split()[0])

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # -- observations ------------------------------------------------------------------------
    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime

    def runqueue_wait_seconds(self) -> float:
        """Time the server's threads spent runnable but waiting for a CPU (schedstat): on a
        shared machine, the part of the latency that other processes' load adds."""
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                total += int((task / "schedstat").read_text().split()[1])
        return total / 1e9

    def memory_kb(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak RSS) of the server, in kB."""
        out: dict[str, int] = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
        return out

    def db_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.dir.glob("bench.db*"))

    def fsyncs_between(self, start: float, end: float) -> int | None:
        """fsync + fdatasync calls begun in [start, end] (epoch seconds); None untraced."""
        if not self.trace_fsync:
            return None
        count = 0
        with self._strace_log.open(errors="replace") as log:
            for line in log:
                # "<pid> <epoch.usec> fdatasync(5 <unfinished ...>" or "... fsync(5) = 0";
                # a "<... fdatasync resumed>" line is the end of a call already counted.
                parts = line.split(None, 2)
                if len(parts) < 3 or "resumed>" in parts[2]:
                    continue
                if parts[2].startswith(("fsync(", "fdatasync(")):
                    with contextlib.suppress(ValueError):
                        if start <= float(parts[1]) <= end:
                            count += 1
        return count

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            # SIGTERM to the server itself (under strace, strace then exits with it).
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid or proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                if self.pid:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                proc.kill()
                proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
