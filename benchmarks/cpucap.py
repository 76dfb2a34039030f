"""A CPU quota per process, with a cgroup the benchmark creates and removes.

On a 2-core machine that also runs PostgreSQL, the load generators and the workers, a
cluster of 1-3 replicas shares the same cores, so adding a replica cannot show growth: the
machine, not the replica, is the bottleneck.  Capping every replica at a fixed share of a
core (``--cpu-per-replica 0.3``) makes each replica the bottleneck of its own share, as if
it had a small machine of its own, while PostgreSQL and the load generators stay uncapped.

cgroup v1 (``/sys/fs/cgroup/cpu/``, ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``) or v2
(``/sys/fs/cgroup/<name>/cpu.max``), whichever this machine mounts; needs root.  Writing
a pid to ``cgroup.procs`` moves every thread of that process.  ``close()`` moves any process
still inside back to the root group and removes the directory, so nothing is left behind
even when a run fails (callers close in a ``finally``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class CpuCapError(RuntimeError):
    """No writable cgroup CPU controller here (not root, or no cpu controller)."""


def _v2() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def quota_us(cores: float, period_us: int = PERIOD_US) -> int:
    """The CFS quota of ``cores`` cores per period (at least 1 ms, the kernel's minimum)."""
    if cores <= 0:
        raise ValueError(f"a CPU share must be positive, not {cores}")
    return max(1000, round(cores * period_us))


class CpuCap:
    """One cgroup limited to ``cores`` cores; ``add(pid)`` moves a process into it."""

    def __init__(self, cores: float, name: str | None = None) -> None:
        self.cores = cores
        name = name or f"sustain-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.v2 = _v2()
        parent = ROOT if self.v2 else ROOT / "cpu"
        self.root_procs = parent / "cgroup.procs"
        self.path = parent / name
        quota = quota_us(cores)
        try:
            if self.v2:
                # The cpu controller must be enabled for the root's children.
                with contextlib.suppress(OSError):
                    (ROOT / "cgroup.subtree_control").write_text("+cpu")
                self.path.mkdir()
                (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                self.path.mkdir()
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        except OSError as exc:
            self.close()
            raise CpuCapError(f"cannot create a CPU-capped cgroup at {self.path}: {exc}") from exc

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def throttled_s(self) -> float:
        """Seconds the group's processes were held back by the quota so far."""
        try:
            stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        except (OSError, ValueError):
            return 0.0
        if "throttled_usec" in stat:  # v2
            return int(stat["throttled_usec"]) / 1e6
        return int(stat.get("throttled_time", 0)) / 1e9  # v1: nanoseconds

    def close(self) -> None:
        if not self.path.exists():
            return
        with contextlib.suppress(OSError):
            for pid in (self.path / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):
                    self.root_procs.write_text(pid)
        with contextlib.suppress(OSError):
            self.path.rmdir()

    def __enter__(self) -> CpuCap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
