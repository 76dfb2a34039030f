"""``sustain.testing``: test your own durable functions (docs/testing.md).

* ``SustainEnv`` (the ``sustain_env`` pytest fixture): an embedded ``Sustain`` on an
  in-memory store and a virtual clock; ``advance``/``auto_skip`` move time, ``run``/``rpc``,
  ``resolve``, ``tree``, ``crash_test``, ``replay``.
* ``VirtualClock``: the clock it runs on.
* ``crash_test`` / ``CrashReport`` / ``CrashTestFailure``: a simulated crash before and
  after every checkpoint of an execution (crash.py); ``kill_test`` does it with SIGKILL to
  a real worker process of a real server (kill.py).
* ``sustain.testing.replay``: ``replay(fn, history)`` re-runs new code against a recorded
  execution (``sustain export``); ``SustainEnv.replay`` calls it with the environment's app.

Nothing here is imported by ``import sustain``; the names below load their module on first
use, so the pytest plugin (registered for every pytest run once Sustain is installed) costs
an import of this file only.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sustain.testing.clock import VirtualClock
    from sustain.testing.crash import CrashReport, CrashTestFailure, Scenario, crash_test
    from sustain.testing.env import SustainEnv
    from sustain.testing.kill import KillReport, KillTestFailure, kill_test

_WHERE = {
    "VirtualClock": "sustain.testing.clock",
    "SustainEnv": "sustain.testing.env",
    "CrashReport": "sustain.testing.crash",
    "CrashTestFailure": "sustain.testing.crash",
    "Scenario": "sustain.testing.crash",
    "crash_test": "sustain.testing.crash",
    "KillReport": "sustain.testing.kill",
    "KillTestFailure": "sustain.testing.kill",
    "kill_test": "sustain.testing.kill",
}

__all__ = [
    "CrashReport",
    "CrashTestFailure",
    "KillReport",
    "KillTestFailure",
    "Scenario",
    "SustainEnv",
    "VirtualClock",
    "crash_test",
    "kill_test",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'sustain.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
