"""Promise data that is not base64 JSON (any tenant may store it: ``param.data`` and
``value.data`` are opaque to the protocol) is shown raw by every reader, never a 500 or a
traceback: the UI pages, ``sustain tree`` / ``promises get`` and the SDK's codec."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from sustain.sdk.codec import DecodingError, decode
from tests.e2e.cli_harness import FAR, Server, rpc, serving, sustain, uid

# Each is stored as is; none is base64 of UTF-8 JSON.
UNDECODABLE = {
    "non-ascii": "é",
    "not-base64": "!!not base64!!",
    "not-utf8": base64.b64encode(b"\xff\xfe\xfd").decode(),
    "not-json": base64.b64encode(b"{nope").decode(),
    "too-deep": base64.b64encode(b"[" * 100_000 + b"]" * 100_000).decode(),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serving(tmp_path_factory)


@pytest.fixture(scope="module")
def stored(server: Server) -> dict[str, str]:
    """A root promise per undecodable data, with a child and a value of the same data."""
    ids = {}
    for name, data in UNDECODABLE.items():
        root = uid(name)
        tags = {"resonate:origin": root, "resonate:target": "poll://any@g"}
        rpc(server, "promise.create", {"id": root, "timeoutAt": FAR, "param": {"data": data},
                                       "tags": tags})  # fmt: skip
        child_tags = {"resonate:origin": root, "resonate:parent": root}
        rpc(server, "promise.create", {"id": f"{root}.1", "timeoutAt": FAR,
                                       "param": {"data": data}, "tags": child_tags})  # fmt: skip
        rpc(server, "promise.settle", {"id": f"{root}.1", "state": "resolved",
                                       "value": {"data": data}})  # fmt: skip
        ids[name] = root
    return ids


@pytest.mark.parametrize("name", UNDECODABLE)
def test_the_ui_shows_undecodable_data(server: Server, stored: dict[str, str], name: str) -> None:
    root = stored[name]
    for path in ("/ui/execution", "/ui/promise"):
        for id in (root, f"{root}.1"):
            answer = httpx.get(f"{server.url}{path}", params={"id": id}, timeout=30)
            assert answer.status_code == 200, (path, id, answer.text[:500])
    answer = httpx.get(f"{server.url}/ui/executions", timeout=30)
    assert answer.status_code == 200, answer.text[:500]
    assert "Traceback" not in server.output()


# A CLI run costs a process: only the cases with an error class of their own (a ValueError
# that is not binascii.Error, a UnicodeDecodeError, a RecursionError).
@pytest.mark.parametrize("name", ["non-ascii", "not-utf8", "too-deep"])
def test_the_cli_shows_undecodable_data(server: Server, stored: dict[str, str], name: str) -> None:
    root = stored[name]
    for args in (["tree", root], ["promises", "get", f"{root}.1"]):
        result = sustain(*args, server=server)
        assert result.code == 0, result
        assert "Traceback" not in result.err, result.err


@pytest.mark.parametrize("name", UNDECODABLE)
def test_the_sdk_codec_names_undecodable_data(name: str) -> None:
    with pytest.raises(DecodingError):
        decode({"data": UNDECODABLE[name]}, "p1")
