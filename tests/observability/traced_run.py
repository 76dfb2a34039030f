"""Run an rpc + sleep workflow against a server with tracing on; print the spans as JSON.

Run as ``python -m tests.observability.traced_run URL`` by test_tracing.py: the tracer
provider is process-global and can be set only once, so the traced SDK lives in a process of
its own instead of switching tracing on for every later test of the pytest process.

Three workers, each a ``Sustain(url=...)`` with its own pid: caller A runs ``parent`` until it
sleeps and is then stopped; callee C runs ``child``; caller B (a new pid in A's group) resumes
``parent`` after the sleep.  The whole execution runs under a client span, as a web request
handler calling ``sustain.run`` would.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sustain import Context, Sustain


def child(ctx: Context, x: int) -> int:
    return x + 1


def double(ctx: Context, x: int) -> int:
    return 2 * x


def main(url: str) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    suffix = uuid.uuid4().hex[:8]
    callers, callees = f"callers-{suffix}", f"callees-{suffix}"

    def parent(ctx: Context, x: int) -> Any:
        y = yield ctx.options(target=callees).rpc("child", x)
        yield ctx.sleep(0.5)
        return (yield ctx.run(double, y))

    a = Sustain(url=url, group=callers, pid=f"caller-a-{suffix}")
    c = Sustain(url=url, group=callees, pid=f"callee-c-{suffix}")
    a.register(parent)
    c.register(child)
    c.start()
    id = f"traced-{suffix}"
    with trace.get_tracer("test").start_as_current_span("client request") as client:
        a.run(id, parent, 20)
    deadline = time.monotonic() + 60
    while True:  # A suspends on the sleep: the timer promise exists, A holds nothing
        try:
            a.promises.get(f"{id}:2")
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    a.stop()
    b = Sustain(url=url, group=callers, pid=f"caller-b-{suffix}")
    b.register(parent)
    b.start()
    result = b.get(id).result(timeout=60)
    b.stop()
    c.stop()
    provider.force_flush()
    spans = [
        {
            "name": s.name,
            "trace_id": f"{s.context.trace_id:032x}",
            "span_id": f"{s.context.span_id:016x}",
            "parent_id": f"{s.parent.span_id:016x}" if s.parent is not None else None,
            "attributes": dict(s.attributes or {}),
        }
        for s in exporter.get_finished_spans()
    ]
    out = {
        "id": id,
        "result": result,
        "client_trace_id": f"{client.get_span_context().trace_id:032x}",
        "client_span_id": f"{client.get_span_context().span_id:016x}",
        "spans": spans,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
