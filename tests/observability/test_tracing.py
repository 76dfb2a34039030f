"""Tracing: one execution is one trace across the caller, the callee and the resumed caller
(three workers with their own pids, through a real server), and the server's spans join it.

The SDK side runs in a child process (``traced_run.py``) with an in-memory exporter; the
server runs with ``OTEL_TRACES_EXPORTER=console`` and prints its spans to its log.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sustain.runtime import trace_context
from tests.servers import start_server

pytest.importorskip("opentelemetry.sdk")

ROOT = Path(__file__).resolve().parents[2]


def test_rpc_and_sleep_workflow_is_one_trace(tmp_path: Path) -> None:
    server = start_server(tmp_path, env={"OTEL_TRACES_EXPORTER": "console"})
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "OTEL_"))}
        done = subprocess.run(
            [sys.executable, "-m", "tests.observability.traced_run", server.url],
            capture_output=True, text=True, timeout=120, cwd=ROOT, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    assert out["result"] == 42
    spans = out["spans"]
    trace_id = out["client_trace_id"]
    assert {s["trace_id"] for s in spans} == {trace_id}, "every span is in the client's trace"
    by_name: dict[str, list[dict]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    tasks = by_name["sustain.task parent"]
    pids = [t["attributes"]["sustain.pid"] for t in tasks]
    # the caller ran on A (first pass, and the pass after the rpc) and was resumed on B
    assert any(p.startswith("caller-a-") for p in pids)
    assert pids[-1].startswith("caller-b-")
    # every attempt of the root task hangs off the client span (the root's traceparent)
    assert {t["parent_id"] for t in tasks} == {out["client_span_id"]}
    # a pass that replays re-creates its remote children (their branch is not in the
    # preload), so each pass has an rpc span; the callee continues the one that created it
    rpcs = {r["span_id"]: r for r in by_name["sustain.rpc child"]}
    (callee,) = by_name["sustain.task child"]
    assert callee["attributes"]["sustain.pid"].startswith("callee-c-")
    creator = rpcs[callee["parent_id"]]
    first = next(t for t in tasks if t["span_id"] == creator["parent_id"])
    assert first["attributes"]["sustain.pid"].startswith("caller-a-")
    sleeps = by_name["sustain.sleep"]
    assert {s["attributes"]["sustain.id"] for s in sleeps} == {f"{out['id']}:2"}
    (step,) = by_name["sustain.run double"]
    resumed = tasks[-1]
    assert step["parent_id"] == resumed["span_id"], "the step after the sleep runs on B"
    # the server's request spans (console exporter, in its log) join the same trace
    log = server.output()
    server_traces = set(re.findall(r'"trace_id": "0x([0-9a-f]{32})"', log))
    assert trace_id in server_traces
    assert re.search(r'"name": "sustain task\.fence"', log)


def test_a_promise_without_traceparent_gets_its_origins_trace() -> None:
    pytest.importorskip("opentelemetry.trace")
    from opentelemetry import trace

    a = trace.get_current_span(trace_context.context_of({"id": "order-7:3.1"})).get_span_context()
    b = trace.get_current_span(trace_context.context_of({"id": "order-7"})).get_span_context()
    c = trace.get_current_span(trace_context.context_of({"id": "order-8"})).get_span_context()
    assert a.trace_id == b.trace_id != c.trace_id
    assert a.is_valid and a.is_remote
    header = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    d = trace.get_current_span(
        trace_context.context_of({"id": "order-7", "param": {"headers": {"traceparent": header}}})
    ).get_span_context()
    assert f"{d.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"


def test_tracing_is_off_without_a_configured_provider() -> None:
    # In this pytest process no tracer provider is ever installed (the traced SDK runs in a
    # child process), so the SDK's hooks must be pass-throughs and inject must add nothing.
    assert trace_context.tracer() is None
    param: dict = {"data": "e30="}
    assert trace_context.inject(param) == {"data": "e30="}


def test_an_unknown_exporter_is_one_error_line(tmp_path: Path) -> None:
    from tests.scenarios.processes import SUSTAIN
    from tests.servers import free_port

    env = {**os.environ, "OTEL_TRACES_EXPORTER": "bogus"}
    done = subprocess.run(
        [SUSTAIN, "serve", "--port", str(free_port()), "--sqlite-path", str(tmp_path / "x.db")],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "Error: OTEL_TRACES_EXPORTER='bogus': Sustain knows console and otlp"
    )
