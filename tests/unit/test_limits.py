"""``protocol.limits``: the answer size estimate and the cron term count.

The estimate bounds memory, so it must not undercount what the encoder writes by much, nor
overcount small records so much that pages get short: both are checked against msgspec's
encoding of real records and pages.
"""

from __future__ import annotations

import msgspec
import pytest

from sustain.engine.responses import FenceData, InnerEnvelope, InnerHead, PromiseData, PromisesPage
from sustain.protocol.limits import answer_size, cron_terms, promise_size
from sustain.protocol.records import Promise, Value


def record(data: str, tags: int = 3) -> Promise:
    return Promise(
        id="root.child.1",
        state="resolved",
        param=Value(headers={"h": "v"}, data=data),
        value=Value(data=data),
        tags={f"resonate:tag{i}": f"value-{i}" for i in range(tags)},
        timeoutAt=1_700_000_000_000,
        createdAt=1_700_000_000_000,
        settledAt=1_700_000_000_001,
    )


@pytest.mark.parametrize("data", ["", "eA==", "A" * 100, "A" * 100_000])
def test_the_estimate_is_close_to_the_encoded_size(data: str) -> None:
    for answer in (
        PromiseData(record(data)),
        PromisesPage([record(data)] * 20, "x"),
        FenceData(
            InnerEnvelope("promise.create", InnerHead("c", 200, "v"), PromiseData(record(data))),
            [record(data)],
        ),
    ):
        encoded = len(msgspec.json.encode(answer))
        estimate = answer_size(answer)
        assert encoded * 0.9 <= estimate <= encoded * 2 + 64, (encoded, estimate)


def test_a_record_grows_with_its_strings() -> None:
    assert promise_size(record("A" * 1000)) - promise_size(record("")) == 2000
    assert answer_size("Promise not found") == len('"Promise not found"')


@pytest.mark.parametrize(
    ("expr", "terms"),
    [("* * * * *", 5), ("0 0 1,15 * MON-FRI", 6), ("*/5 1,2,3 * * * *", 8), ("@daily", 1)],
)
def test_cron_terms(expr: str, terms: int) -> None:
    assert cron_terms(expr) == terms
