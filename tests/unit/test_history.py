"""The history format (protocol/history.py): what ``sustain export`` writes, read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sustain.protocol import history


def _promise(id: str, created: int, **tags: str) -> dict[str, Any]:
    base = {"resonate:origin": "wf", "resonate:parent": "wf"}
    return {"id": id, "state": "resolved", "param": {}, "value": {}, "createdAt": created,
            "tags": {**base, **tags}}  # fmt: skip


def test_dump_orders_calls_as_made_and_keeps_link_records_and_linked_promises() -> None:
    root = _promise("wf", 0)
    step2 = _promise("wf:2", 20)
    step1 = _promise("wf:1", 10)
    nested = _promise("wf:1.1", 11, **{"resonate:parent": "wf:1"})
    link = _promise("wf:3", 30, **{"resonate:scope": "local", "sustain:link": "approve"})
    linked = {**_promise("approve", 5), "tags": {"resonate:origin": "approve"}}
    document = history.dump(root, [step2, link, nested, linked, step1], 99)
    ids = [p["id"] for p in document["promises"]]
    assert ids[:4] == ["wf", "wf:1", "wf:1.1", "wf:2"]
    assert set(ids) == {"wf", "wf:1", "wf:1.1", "wf:2", "wf:3", "approve"}
    assert (document["format"], document["version"], document["root"]) == (
        "sustain.history", 1, "wf",
    )  # fmt: skip
    parsed = history.loads(json.dumps(document))
    assert parsed.root_id == "wf"
    assert parsed.promises["wf:3"] == link


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([], "a JSON object"),
        ({"format": "sustain.history", "version": 1, "root": "wf", "promises": {}},
         "must be a list"),
        ({"format": "sustain.history", "version": 1, "root": "wf", "promises": [{"id": "wf"}]},
         "no valid state"),
        ({"format": "sustain.history", "version": 1, "promises": []}, "'root' must be"),
    ],
)  # fmt: skip
def test_parse_says_what_is_wrong(document: Any, reason: str) -> None:
    with pytest.raises(history.HistoryFormatError, match=reason):
        history.parse(document)
