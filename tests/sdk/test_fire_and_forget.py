"""A fire-and-forget call made just before ``stop()`` still reaches the store.

``begin_rpc`` returns its handle at once and creates the promise on the facade's loop; a
client that dispatches and exits (SCENARIOS.md §7) calls ``stop()`` right away, which must
wait for those creating requests rather than drop them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sustain import Sustain
from tests.sdk.conftest import unique
from tests.servers import ServerProcess


@pytest.mark.parametrize("where", ["file", "remote"])
def test_calls_dispatched_right_before_stop_are_all_created(
    where: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def make() -> Sustain:
        if where == "remote":
            server: ServerProcess = request.getfixturevalue("sdk_server")
            return Sustain(url=server.url, group=unique("g"))
        return Sustain(store=str(tmp_path / "s.db"), group=unique("g"))

    client = make()
    ids = [unique("fire") for _ in range(12)]
    for id in ids:
        client.options(target=unique("nobody")).begin_rpc(id, "compute", id)
    client.stop()
    later = make()
    try:
        assert [later.promises.get(id)["state"] for id in ids] == ["pending"] * len(ids)
    finally:
        later.stop()
