"""The UI's Queues page in a real headless Chromium against a real ``sustain serve``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.queues.conftest import server
from tests.servers import ServerProcess, unique

__all__ = ["server"]  # the fixture: a real server for the test


def test_queues_page_shows_running_and_waiting_by_priority(
    server: ServerProcess, page: Any, shots: Path
) -> None:
    name = unique("q")
    server.ok("sustain.queue.create", {"name": name, "concurrency": 1, "rate": "10/min"})
    tags = {"resonate:target": "poll://any@nobody", "sustain:queue": name}
    for priority in ["2", "0", "2", "2"]:  # the first runs, three wait
        data = {"id": unique("j"), "timeoutAt": 2**53, "tags": tags}
        data["tags"] = {**tags, "sustain:priority": priority}
        server.ok("promise.create", data)
    page.goto(server.url + "/ui/queues")
    row = page.query_selector(f'tr[data-id="{name}"]')
    assert row is not None
    cells = [c.inner_text() for c in row.query_selector_all("td")]
    assert cells[:5] == [name, "1", "—", "10/min", "1"]
    assert cells[5] == "3 (1 at 0, 2 at 2)"
    assert cells[7] == "1"
    page.screenshot(path=str(shots / "queues.png"), full_page=True)
    assert page.query_selector('nav a[href="/ui/queues"].active') is not None
