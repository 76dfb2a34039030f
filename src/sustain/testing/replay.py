"""``replay(fn, history)``: does new code still replay a recorded execution?

A history is what ``sustain export ID > history.json`` wrote (sustain/protocol/history.py):
a path to that file, its text, the decoded JSON object or a parsed ``History``.  The
function runs from the top against it without running any leaf (sdk/history_replay.py):
recorded steps give their recorded results, and the first call that differs from the one
recorded raises ``NondeterminismError`` with its ``step``, ``recorded`` and ``found``::

    from sustain.testing.replay import replay

    def test_checkout_v2_replays_last_weeks_orders():
        report = replay(checkout, "tests/histories/order-1234.json", sustain=app)
        assert report.status in ("completed", "suspended")

``sustain`` (optional) is the app whose registered functions, dependencies and group the
replay uses, as a worker of that app would; without it, ``fn`` alone is registered under
the name the history's root records.  ``areplay`` is the same for async tests.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sustain.errors import AsyncUsageError, InvalidHistoryError
from sustain.protocol import history as history_format
from sustain.protocol.history import History, HistoryFormatError
from sustain.sdk import codec
from sustain.sdk.client import Sustain
from sustain.sdk.history_replay import ReplayReport, app_parts, replay_history, run
from sustain.sdk.registry import Registry

HistoryLike = History | Mapping[str, Any] | str | os.PathLike[str]

__all__ = ["ReplayReport", "areplay", "load", "replay"]


def load(source: HistoryLike) -> History:
    """A parsed history from a file path, JSON text, a decoded document or a History."""
    if isinstance(source, History):
        return source
    name = "the history"
    try:
        if isinstance(source, Mapping):
            return history_format.parse(source)
        text = str(source)
        if isinstance(source, os.PathLike) or not text.lstrip().startswith("{"):
            name = repr(text)
            try:
                text = Path(text).read_text(encoding="utf-8")
            except OSError as exc:
                raise InvalidHistoryError(name, exc.strerror or str(exc)) from None
        return history_format.loads(text)
    except HistoryFormatError as exc:
        raise InvalidHistoryError(name, str(exc)) from None


async def areplay(
    fn: Callable[..., Any], history: HistoryLike, *, sustain: Sustain | None = None
) -> ReplayReport:
    """``replay`` on the running event loop."""
    parsed = load(history)
    if sustain is not None:
        registry, dependencies, group = app_parts(sustain)  # as a worker of the app has them
    else:
        registry, dependencies, group = Registry(), {}, "default"
    function = registry.find(fn)
    if function is None:
        recorded = codec.recorded_func(parsed.root.get("param"))
        function = registry.add(fn, name=recorded or getattr(fn, "__name__", None))
    return await replay_history(parsed, registry, function, group=group, dependencies=dependencies)


def replay(
    fn: Callable[..., Any], history: HistoryLike, *, sustain: Sustain | None = None
) -> ReplayReport:
    """Replay ``history`` with ``fn`` (module docstring); ``NondeterminismError`` at the
    first step that differs, else how the replay ended (``ReplayReport``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop in this thread: the usual, synchronous test
        return run(areplay(fn, history, sustain=sustain))
    raise AsyncUsageError("replay()", "await areplay(...)")
