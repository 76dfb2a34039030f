"""Deterministic ids and the tags the SDK puts on every promise (SDK-WIRE §2.1).

A child id is its parent's id, a separator and the parent context's call counter (1, 2, ...
in call order of every durable op), so a replay mints the same ids.  The ids are the official
SDKs' (SDK-WIRE §2.1): the first child segment joins a root with ``:`` and deeper segments
with ``.`` (``wf`` → ``wf:1`` → ``wf:1.2``), so a tree started by Sustain and one started by
an official SDK look alike.  The engine computes the origin of an id as the text before its
first ``.`` or ``:``, so a root id may contain neither (nor NUL).  A detached child is
``{origin}:d{16 hex}``: a blake2b hash of the id it would have had, as the official Python
SDK mints it, so it is deterministic too.
"""

from __future__ import annotations

import hashlib
import re

from sustain.errors import InvalidIdError

ROOT_SEP = ":"
SEP = "."
_SEPARATORS = re.compile(r"[.:]")

ORIGIN = "resonate:origin"
BRANCH = "resonate:branch"
PARENT = "resonate:parent"
SCOPE = "resonate:scope"
TARGET = "resonate:target"
TIMER = "resonate:timer"
EXTERNAL = "resonate:external"
# Sustain's own: on a link record, the promise of another origin its caller awaits
# (replay.py ``_link``); the official SDKs ignore tags they do not know.
LINK = "sustain:link"

MAX_ID = 1024


def validate_root(id: object) -> str:
    """The id itself, or ``InvalidIdError`` before any request is sent."""
    if not isinstance(id, str):
        raise InvalidIdError(repr(id), "an id must be a string")
    if not id:
        raise InvalidIdError(id, "an id must not be empty")
    if "\x00" in id:
        raise InvalidIdError(id, "an id must not contain NUL")
    if SEP in id or ROOT_SEP in id:
        raise InvalidIdError(id, "a root id must not contain '.' or ':' (they separate child ids)")
    if len(id) > MAX_ID:
        raise InvalidIdError(id[:40] + "...", f"an id must be at most {MAX_ID} characters")
    return id


def validate_child(id: object) -> str:
    """An explicit child id (``ctx.options(id=...)``): any non-empty text without NUL."""
    if not isinstance(id, str) or not id or "\x00" in id or len(id) > MAX_ID:
        raise InvalidIdError(repr(id), "an id must be a non-empty string without NUL")
    return id


def origin_of(id: str) -> str:
    return _SEPARATORS.split(id, 1)[0]


def extends(id: str, prefix: str) -> bool:
    """True when ``id`` is ``prefix`` or lies below it (the protocol's tag rule)."""
    if not id.startswith(prefix):
        return False
    return len(id) == len(prefix) or id[len(prefix)] in ".:"


def child(parent: str, seq: int) -> str:
    sep = ROOT_SEP if _SEPARATORS.search(parent) is None else SEP
    return f"{parent}{sep}{seq}"


def detached(origin: str, would_be: str) -> str:
    digest = hashlib.blake2b(would_be.encode(), digest_size=8).hexdigest()
    return f"{origin}{ROOT_SEP}d{digest}"


def root_tags(id: str, target: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    tags = dict(extra or {})
    tags.update({ORIGIN: origin_of(id), BRANCH: id, PARENT: id, SCOPE: "global", TARGET: target})
    return tags


def local_tags(id: str, origin: str, branch: str, parent: str) -> dict[str, str]:
    """A ``ctx.run`` child: same branch as its parent, no target (it runs in process)."""
    del id
    return {ORIGIN: origin, BRANCH: branch, PARENT: parent, SCOPE: "local"}


def global_tags(
    id: str, origin: str, parent: str, target: str | None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """An ``rpc`` / ``sleep`` / ``promise`` child: a branch of its own."""
    tags = dict(extra or {})
    tags.update({ORIGIN: origin, BRANCH: id, PARENT: parent, SCOPE: "global"})
    if target is not None:
        tags[TARGET] = target
    return tags


def resolve_target(target: str) -> str:
    """A bare group name means ``poll://any@group``; anything with ``://`` passes through."""
    return target if "://" in target else f"poll://any@{target}"
