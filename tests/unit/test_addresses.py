"""Address validity and parsing (PROTOCOL.md §4.1, §0.1 item 15)."""

from __future__ import annotations

import pytest

from sustain.protocol.addresses import Address, parse_address


@pytest.mark.parametrize(
    "address",
    [
        "http://localhost:8080/hook",
        "https://example.com",
        "HTTP://example.com:443/a?b=c#d",
        "http://[::1]:9000/x",
        "http://user:pw@host/",
        "poll://any@default",
        "poll://uni@group/worker-1",
        "poll://any@g/a/b/c",
        "poll://any@g/",
        "poll://uni@g/id?query#frag",
        "gcps://project/topic",
        "bash://",
        "bash://bash",
        "bash://docker/ubuntu",
        "bash:whatever",
    ],
)
def test_valid_addresses(address: str) -> None:
    assert parse_address(address) is not None


@pytest.mark.parametrize(
    "address",
    [
        "",
        "default",
        "poll://default",
        "poll://all@default",
        "poll://any@",
        "poll://any@/id",
        "poll:any@g",
        "http://",
        "http://host:99999/",
        "http://host:port/",
        "http://a b/",
        "gcps://project",
        "gcps://project/",
        "gcps:///topic",
        "ftp://example.com",
        "mailto:x@y",
        "://nothing",
        "1http://x",
    ],
)
def test_invalid_addresses(address: str) -> None:
    assert parse_address(address) is None


def test_poll_parts_are_decoded() -> None:
    a = parse_address("poll://uni@my%20group/id%201/x")
    assert a == Address(
        scheme="poll",
        url="poll://uni@my%20group/id%201/x",
        cast="uni",
        group="my group",
        id="id 1/x",
    )


def test_poll_without_id() -> None:
    for address in ("poll://any@g", "poll://any@g/", "poll://any@g?x=1"):
        parsed = parse_address(address)
        assert parsed is not None
        assert (parsed.cast, parsed.group, parsed.id) == ("any", "g", None)


def test_http_keeps_the_original_string() -> None:
    a = parse_address("https://Example.com:8443/p?q=1")
    assert a is not None
    assert (a.scheme, a.url) == ("https", "https://Example.com:8443/p?q=1")


def test_gcps_parts() -> None:
    a = parse_address("gcps://proj/topic")
    assert a is not None
    assert (a.scheme, a.group, a.id) == ("gcps", "proj", "topic")
