"""Fuzz, well-typed: envelopes that pass the envelope checks, for every operation kind.

tests/server/test_fuzz.py throws malformed bodies at the server; almost none of them reaches
the engine.  Here every kind of ``sustain.protocol.requests`` (and ``sustain.batch`` of them)
gets data built from its own msgspec Struct: the right field names and types, drawn from a
small pool of ids and tasks, so that operations meet each other's promises, tasks and
schedules; reserved tags and addresses, the edges of the 64-bit range, non-ASCII and
undecodable data, and now and then a field dropped or of the wrong type.  Every answer must be
a well-formed envelope (test_fuzz's check) under the request's own kind and corrId, with a
status the protocol uses (never a 500), and the server must answer normally afterwards.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import msgspec.inspect as mi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sustain.protocol import requests
from sustain.protocol.envelope import BATCH
from tests.server import test_fuzz as malformed
from tests.servers import VERSION, ServerProcess, start_server

IDS = ["p1", "p1.1", "p2", "s1", "é", "", "a" * 300, "p1:tick"]
ids = st.sampled_from(IDS)
text = st.one_of(ids, st.text(max_size=12))
tag_keys = st.sampled_from(
    ["resonate:target", "resonate:origin", "resonate:parent", "resonate:scope", "resonate:timer",
     "resonate:branch", "resonate:invoke", "k", ""]
)  # fmt: skip
tag_values = st.one_of(
    st.sampled_from(["poll://any@g", "poll://uni@g/w1", "http://127.0.0.1:1/x", "p1", "true",
                     "global", "local", "bogus://x"]),
    text,
)  # fmt: skip
tags = st.dictionaries(tag_keys, tag_values, max_size=4)
data = st.one_of(
    st.none(),
    st.sampled_from(["", "é", "!!", "eyJ4IjogMX0=", "eyJmdW5jIjogImYiLCAiYXJncyI6IFtdfQ=="]),
    st.text(max_size=12),
)
values = st.fixed_dictionaries({}, optional={"headers": tags, "data": data})
times = st.one_of(
    st.sampled_from([0, 1, -1, 2**53, 2**63 - 1, -(2**63)]),
    st.integers(min_value=0, max_value=4_000_000_000_000),
)
small = st.one_of(st.sampled_from([0, 1, -1, 2**63 - 1]), st.integers(0, 100))
head = st.fixed_dictionaries({"corrId": st.just("inner"), "version": st.just(VERSION)})
STATUSES: Counter[int] = Counter()
wrong = malformed.json_values  # any JSON at all: a field of the wrong type


def for_type(t: mi.Type, name: str) -> st.SearchStrategy[Any]:
    """Values of msgspec type ``t`` for a field called ``name``."""
    if isinstance(t, mi.UnionType):
        return st.one_of(*(for_type(member, name) for member in t.types))
    if isinstance(t, mi.NoneType):
        return st.none()
    if isinstance(t, mi.BoolType):
        return st.booleans()
    if isinstance(t, mi.IntType):
        return times if name in ("timeoutAt", "promiseTimeout", "time") else small
    if isinstance(t, mi.StrType):
        if name == "cron":
            return st.sampled_from(["* * * * *", "*/5 * * * * *", "0 0 31 2 *", "nope", ""])
        if name == "address":
            return tag_values
        if name == "pid":
            return st.sampled_from(["w1", "w2", ""])
        return ids if name in ("id", "awaited", "awaiter", "promiseId", "cursor") else text
    if isinstance(t, mi.LiteralType):
        return st.sampled_from(list(t.values))
    if isinstance(t, mi.DictType):
        return tags
    if isinstance(t, mi.ListType):
        return st.lists(for_type(t.item_type, name), max_size=3)
    if isinstance(t, mi.StructType):
        if t.cls.__name__ == "Value":
            return values
        if t.cls is requests.FenceAction:
            kind = st.sampled_from(["promise.create", "promise.settle", "promise.get"])
            return kind.flatmap(
                lambda k: st.fixed_dictionaries(
                    {"kind": st.just(k), "head": head, "data": kind_data(k)}
                )
            )
        return struct(t)
    return wrong  # Any


def struct(t: mi.StructType) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in t.fields:
        if field.name == "kind":  # an action's kind: the op its data is for
            strategy: st.SearchStrategy[Any] = st.sampled_from(
                [t.cls.__name__.removesuffix("Action").lower(), "promise.create"]
            ).map(lambda k: {"create": "promise.create", "settle": "promise.settle",
                             "callback": "promise.register_callback"}.get(k, k))  # fmt: skip
        elif field.name == "head":
            strategy = head
        else:
            strategy = for_type(field.type, field.encode_name)
        # Rarely a field of the wrong type: the parser's 400, never the engine's 500.
        strategy = st.one_of(strategy, strategy, strategy, strategy, strategy, strategy, wrong)
        (fields if field.required else optional)[field.encode_name] = strategy
    return st.fixed_dictionaries(fields, optional=optional)


def kind_data(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    cls = requests._TABLE[kind][0]
    return struct(mi.type_info(cls))  # type: ignore[arg-type]


KINDS = sorted(requests.KINDS)
envelopes = st.sampled_from(KINDS).flatmap(
    lambda kind: st.fixed_dictionaries(
        {"kind": st.just(kind), "head": st.fixed_dictionaries(
            {"corrId": st.text(min_size=1, max_size=8), "version": st.just(VERSION)}),
         "data": kind_data(kind)}
    )
)  # fmt: skip
batches = st.lists(envelopes, min_size=1, max_size=6).map(
    lambda elements: {"kind": BATCH, "head": {"corrId": "b", "version": VERSION},
                      "data": {"requests": elements}}
)  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # --debug: debug.* operations exist, so that every kind reaches the engine.
    proc = start_server(tmp_path_factory.mktemp("fuzz-ops"), "--debug")
    yield proc
    proc.stop()


def check(server: ServerProcess, envelope: dict[str, Any]) -> Any:
    answer = malformed._check(server, json.dumps(envelope).encode())
    STATUSES[answer["head"]["status"]] += 1
    assert answer["kind"] == envelope["kind"]
    assert answer["head"]["corrId"] == envelope["head"]["corrId"]
    return answer


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(envelope=envelopes)
def test_typed_envelopes_of_every_kind_never_500(
    server: ServerProcess, envelope: dict[str, Any]
) -> None:
    check(server, envelope)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(batch=batches)
def test_batches_of_typed_envelopes_never_500(server: ServerProcess, batch: dict[str, Any]) -> None:
    answer = check(server, batch)
    if answer["head"]["status"] == 200:
        elements = answer["data"]["responses"]
        assert len(elements) == len(batch["data"]["requests"])
        for sent, got in zip(batch["data"]["requests"], elements, strict=True):
            assert got["kind"] == sent["kind"]
            assert got["head"]["status"] in malformed.ALLOWED, got


def test_the_server_is_well_after_the_fuzz(server: ServerProcess) -> None:
    # The generator reaches the engine: not only the parser's 400s.
    assert sum(n for status, n in STATUSES.items() if status != 400) > 20, STATUSES
    assert server.ok("promise.create", {"id": "after-fuzz", "timeoutAt": 2**53})
    assert server.ok("promise.search", {"limit": 1}) is not None
    assert "Internal error" not in server.output()
    assert "Traceback" not in server.output()
