"""Version routing (docs/deploying.md): the tags that pin an execution to one version of its
function, and the announcement of the functions a worker serves.

An execution is *pinned* when its promise carries both ``sustain:function`` and
``sustain:version`` (the SDK sets them when the caller knows the version: it named one, or
the function is registered in its process, newest version first).  The server delivers a
pinned execution only to a poll stream that announced that function at that version; while
none is connected the execute is dropped and the task's retry timer sends it again, so the
execution waits (pending) instead of failing.  An unpinned execution (an official SDK's, or
a call by name of a function the caller does not know) goes to any stream of the group, as
before.

A worker announces what it serves in its poll stream's query string,
``GET /poll/{group}/{pid}?functions=<json>`` with ``{"name": [1, 2], ...}``.  A stream
without the parameter (an official SDK worker) announced nothing: it receives unpinned
executions only.  Official SDKs ignore the two tags (SDK-WIRE §2.1: unknown tags are
carried, not read).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import msgspec

FUNCTION = "sustain:function"
VERSION = "sustain:version"
QUERY = "functions"

Pin = tuple[str, int]  # (function name, version)
Functions = Mapping[str, Collection[int]]

MAX_ANNOUNCED = 10_000  # versions in one announcement: bounds what a stream may make us hold


def pin_tags(name: str, version: int) -> dict[str, str]:
    return {FUNCTION: name, VERSION: str(version)}


def pin_of(tags: Mapping[str, str] | None) -> Pin | None:
    """The (function, version) an execution is pinned to, or None (any worker may run it).
    A malformed version pins nothing: routing never strands an execution on a typo."""
    if not tags:
        return None
    name, version = tags.get(FUNCTION), tags.get(VERSION)
    if not name or version is None or not version.isdigit():
        return None
    return name, int(version)


def encode_functions(functions: Functions) -> str:
    return msgspec.json.encode({name: sorted(v) for name, v in functions.items()}).decode()


def parse_functions(text: str) -> dict[str, frozenset[int]]:
    """The announcement of a poll stream; ``ValueError`` with a message for bad input."""
    try:
        raw = msgspec.json.decode(text, type=dict[str, list[int]])
    except msgspec.DecodeError as exc:
        raise ValueError(f'functions must be JSON like {{"name": [1, 2]}}: {exc}') from None
    if sum(len(v) for v in raw.values()) > MAX_ANNOUNCED:
        raise ValueError(f"functions announces more than {MAX_ANNOUNCED} versions")
    for name, versions in raw.items():
        if not name or any(v < 1 for v in versions):
            raise ValueError(f"functions: {name!r} needs a name and versions of at least 1")
    return {name: frozenset(v) for name, v in raw.items()}


def serves(functions: Functions | None, pin: Pin) -> bool:
    """Whether a stream that announced ``functions`` may run an execution pinned to ``pin``."""
    return functions is not None and pin[1] in functions.get(pin[0], ())
