"""Reserved tag names (PROTOCOL.md §3.5) and the id-based origin rule."""

from __future__ import annotations

import re
from collections.abc import Mapping

TARGET = "resonate:target"
TIMER = "resonate:timer"
DELAY = "resonate:delay"
ORIGIN = "resonate:origin"
BRANCH = "resonate:branch"
PARENT = "resonate:parent"
PREFIX = "resonate:prefix"
SCHEDULE = "resonate:schedule"
SCOPE = "resonate:scope"
# Sustain's own: on an execution started by ``sustain.retry``, the id of the failed execution
# it retries (the official SDKs ignore tags they do not know).
RETRY_OF = "sustain:retry-of"

# Sustain's own tags (docs/queues.md): the queue a promise's task waits on, its key within
# the queue (per-key limits, fairness) and its priority (smaller goes first, default 0).  An
# official SDK passes them through like any tag and never reads them.
QUEUE = "sustain:queue"
QUEUE_KEY = "sustain:key"
PRIORITY = "sustain:priority"
# Set by the server on a promise a deduplicating queue attached to an earlier one with the
# same key (docs/queues.md, "Deduplication"): the id of that earlier promise.
DEDUP_OF = "sustain:dedup-of"


_SEPARATOR = re.compile(r"[.:]")


def origin_of(id: str) -> str:
    """The origin of an id for same-origin checks: the text before its first ``.`` or ``:``.

    Computed from the id, never from the ``resonate:origin`` tag (§3.5).  PROTOCOL.md names
    only ``.``; the official SDKs join the first child segment with ``:`` (``wf:1.2``), so
    Sustain accepts both (docs/decisions.md, "Id separators").
    """
    return _SEPARATOR.split(id, 1)[0]


def has_separator(id: str) -> bool:
    return _SEPARATOR.search(id) is not None


def is_timer(tags: Mapping[str, str]) -> bool:
    """A timer promise resolves (instead of rejecting) when it times out; exactly ``"true"``."""
    return tags.get(TIMER) == "true"


def is_prefixed_by(id: str, prefix: str) -> bool:
    """True when ``id`` equals ``prefix`` or lies below it, joined by ``.`` or ``:``."""
    if not id.startswith(prefix):
        return False
    return len(id) == len(prefix) or id[len(prefix)] in ".:"
