"""A real ``sustain worker`` process serving a group of its own on a real server.

``serving(server, tmp_path, app, env)`` starts ``sustain worker <app> --group <new group>``
(tests/scenarios/processes.py) with ``SUSTAIN_URL`` set to the server, waits for its banner
and yields the group; the process is stopped (SIGTERM, then SIGKILL) however the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.scenarios.processes import sustain_worker, wait_until
from tests.sdk.conftest import unique
from tests.servers import ServerProcess


@contextmanager
def serving(
    server: ServerProcess, tmp_path: Path, app: str, env: dict[str, str] | None = None
) -> Iterator[str]:
    group = unique("workers")
    log = tmp_path / f"worker-{group}.log"
    worker = sustain_worker(app, group, log, {"SUSTAIN_URL": server.url, **(env or {})}, False)
    try:
        # a bound on the wait, not an assertion on speed
        wait_until(lambda: "serving group" in worker.output() or not worker.alive(), 60, app)
        assert worker.alive(), worker.output()
        yield group
    finally:
        worker.stop()
