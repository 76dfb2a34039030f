"""A real ``sustain worker`` process serving a group of its own on a real server.

``serving(server, tmp_path, app, env)`` starts ``sustain worker <app> --group <new group>``
with ``SUSTAIN_URL`` set to the server, waits for its banner and yields the group; the
process is stopped (SIGTERM, then SIGKILL) however the test ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.sdk.conftest import unique
from tests.servers import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serving(
    server: ServerProcess, tmp_path: Path, app: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    group = unique("workers")
    full = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "CRASH_"))}
    full.update({"SUSTAIN_URL": server.url, **(env or {})})
    out = tmp_path / f"worker-{group}.out"
    script = str(Path(sys.executable).parent / "sustain")
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [script, "worker", app, "--group", group],
            env=full, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60  # a bound on the wait, not an assertion on speed
        while "serving group" not in out.read_text():
            assert proc.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.05)
        yield group
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
