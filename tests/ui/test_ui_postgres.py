"""The UI's read queries on a ``sustain serve --postgres`` (no browser: the pages' HTML).

The UI reads through the ``Tx`` protocol only, so the same pages must come out of every
store; this runs an execution with a remote worker against PostgreSQL and checks the list,
the tree, the external promise's page, a settle from the UI's form and ``GET /workers``."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from sustain import Sustain
from tests.scenarios.processes import wait_until
from tests.servers import start_server, unique
from tests.store.postgres_db import temp_database
from tests.ui.workflows import register


def test_ui_pages_on_postgres(tmp_path: Path) -> None:
    with temp_database() as url:
        server = start_server(tmp_path, "--postgres", url)
        sustain = Sustain(url=server.url, group=unique("pgui"))
        register(sustain)
        try:
            root = unique("pgask")
            handle = sustain.run(root, "approval", "o-1")
            wait_until(lambda: _pending(server.url, f"{root}:1"), 60, "the external promise")
            listed = httpx.get(f"{server.url}/ui/executions?prefix={root}", timeout=30).text
            assert re.findall(r'<tr data-id="([^"]+)"', listed) == [root]
            tree = httpx.get(f"{server.url}/ui/execution?id={root}", timeout=30).text
            nodes = re.findall(r'data-id="([^"]+)" data-kind="([^"]+)"', tree)
            assert nodes == [(root, "root"), (f"{root}:1", "promise")]
            form = {"id": f"{root}:1", "state": "resolved", "value": '"yes"', "confirmed": "1"}
            settled = httpx.post(
                f"{server.url}/ui/promise/settle", data=form, headers={"origin": server.url}
            )
            assert settled.status_code == 303
            assert handle.result(timeout=60) == {"order": "o-1", "decision": "yes"}
            workers = httpx.get(f"{server.url}/workers", timeout=30).json()["workers"]
            assert sustain.pid in [w["pid"] for w in workers]
        finally:
            sustain.stop()
            server.stop()


def _pending(url: str, id: str) -> bool:
    page = httpx.get(f"{url}/ui/promise", params={"id": id}, timeout=30)
    return page.status_code == 200 and 'data-state="pending"' in page.text
