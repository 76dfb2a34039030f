"""``env.replay``: an execution recorded in the test environment, replayed by the same code
(it completes without running a step) and by changed code (``NondeterminismError``)."""

from __future__ import annotations

from typing import Any

import pytest

from sustain import Context, NondeterminismError
from sustain.protocol import callgraph, history
from sustain.testing import SustainEnv

ran: list[int] = []


def double(ctx: Context, x: int) -> int:
    ran.append(x)
    return 2 * x


def triple(ctx: Context, x: int) -> int:
    return 3 * x


def twice(ctx: Context, x: int) -> Any:
    a = yield ctx.run(double, x)
    b = yield ctx.run(double, a)
    return b


def changed(ctx: Context, x: int) -> Any:
    a = yield ctx.run(triple, x)  # another step where the history recorded double
    return a


def _promises(node: callgraph.CallNode) -> list[dict[str, Any]]:
    return [node.promise, *(p for child in node.children for p in _promises(child))]


def test_replay_of_an_execution_recorded_in_the_environment(sustain_env: SustainEnv) -> None:
    handle = sustain_env.run(twice, 5)
    assert handle.result(timeout=30) == 20
    tree = sustain_env.tree(handle.id)
    recorded = history.dump(tree.promise, _promises(tree), sustain_env.now())
    ran.clear()
    report = sustain_env.replay(twice, recorded)
    assert (report.status, report.value, report.steps) == ("completed", 20, 2)
    assert ran == []  # a replay runs no step: the recorded results stand in
    with pytest.raises(NondeterminismError):
        sustain_env.replay(changed, recorded)
