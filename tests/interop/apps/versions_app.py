"""A Sustain worker that registers ``py_greet`` too (the official Python app's name), for
tests/interop/test_version_routing.py: which worker answered tells where an execution ran."""

from __future__ import annotations

from typing import Any

from sustain import Context, Sustain

sustain = Sustain()


@sustain.register
def py_greet(ctx: Context, payload: Any) -> dict[str, Any]:
    return {"got": payload, "by": "sustain"}
