"""OpenTelemetry spans for durable calls and task attempts, and the trace context they carry.

Off unless OpenTelemetry is installed *and configured*: ``tracer()`` answers None while no
module has imported ``opentelemetry.trace`` (Sustain never imports it first: a process that
does not use OpenTelemetry pays one ``sys.modules`` lookup per task and per durable call), and
while the global tracer provider is still the API's placeholder (``ProxyTracerProvider``),
i.e. nobody called ``trace.set_tracer_provider``.  ``configure_from_env`` is that call for
Sustain's own processes (``sustain serve``, ``sustain worker``): with ``OTEL_TRACES_EXPORTER``
set to ``console`` or ``otlp`` and ``opentelemetry-sdk`` installed, it installs a provider.

One execution is one trace, across processes and days:

* A durable call that leaves the process (rpc, detached, sleep, promise) writes the W3C
  ``traceparent`` of its own span into the child promise's ``param.headers``; the worker that
  runs the child starts its task span as a child of it.
* A task attempt's span is a child of the ``traceparent`` stored on the task's promise.  Every
  attempt of one task (the first pass, each resumption after a sleep or an rpc, a replay on
  another worker after a crash) reads the same stored header, so they all join one trace.
* A promise without the header (created by a client that does not trace, or before tracing
  was turned on) gets a trace derived from its origin id: trace id = blake2b-128 of the
  origin, parent span id = blake2b-64 of it.  Every process computes the same ids, so such an
  execution is still one trace, whose root span is never exported (a "missing parent" in
  tracing UIs).

Only calls that do something get a span: a call answered from the replay cache (a step that
finished in an earlier pass) is not traced again.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Mapping
from typing import Any

TRACEPARENT = "traceparent"
_TRACER_NAME = "sustain"
_cache: tuple[Any, Any] | None = None  # (provider, tracer)


def tracer() -> Any | None:
    """The tracer to use, or None when tracing is off (see the module docstring)."""
    global _cache  # noqa: PLW0603 - a one-entry cache, replaced when the provider changes
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return None
    provider = api.get_tracer_provider()
    cached = _cache
    if cached is not None and cached[0] is provider:
        return cached[1]
    if isinstance(provider, api.ProxyTracerProvider | api.NoOpTracerProvider):
        return None
    found = provider.get_tracer(_TRACER_NAME)
    _cache = (provider, found)
    return found


def configure_from_env() -> bool:
    """Install a tracer provider from ``OTEL_TRACES_EXPORTER`` (``console`` or ``otlp``) when
    none is installed yet; True when tracing is on afterwards.  Raises ``ValueError`` with a
    readable message when the variable asks for a package that is missing."""
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if not wanted or wanted == "none":
        return tracer() is not None
    try:
        from opentelemetry import trace  # noqa: PLC0415
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import (  # noqa: PLC0415
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
            SpanExporter,
        )
    except ImportError:
        raise ValueError(
            "OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed "
            "(pip install 'sustain[otel]')"
        ) from None
    if tracer() is not None:
        return True  # the application configured its own provider
    exporter: SpanExporter
    if wanted == "console":
        exporter = ConsoleSpanExporter()
        processor: Any = SimpleSpanProcessor(exporter)
    elif wanted == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found,unused-ignore]  # noqa: PLC0415
                OTLPSpanExporter,
            )
        except ImportError:
            raise ValueError(
                "OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http"
            ) from None
        processor = BatchSpanProcessor(OTLPSpanExporter())
    else:
        raise ValueError(f"OTEL_TRACES_EXPORTER={wanted!r}: Sustain knows console and otlp")
    name = os.environ.get("OTEL_SERVICE_NAME") or f"sustain-{os.path.basename(sys.argv[0])}"
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return tracer() is not None


# -- trace context in promise headers ------------------------------------------------------


def _origin_of(id: str) -> str:
    for i, ch in enumerate(id):
        if ch in ".:":
            return id[:i]
    return id


def origin_context(origin: str) -> Any:
    """A context whose (remote, never exported) parent span is derived from ``origin``."""
    from opentelemetry import trace  # noqa: PLC0415

    raw = origin.encode()
    trace_id = int.from_bytes(hashlib.blake2b(raw, digest_size=16).digest(), "big") or 1
    span_id = int.from_bytes(hashlib.blake2b(raw + b"#root", digest_size=8).digest(), "big") or 1
    parent = trace.SpanContext(
        trace_id, span_id, is_remote=True, trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED)
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def context_of(promise: Mapping[str, Any]) -> Any:
    """The parent context for work on ``promise``: its ``traceparent``, else its origin's."""
    param = promise.get("param")
    headers = param.get("headers") if isinstance(param, Mapping) else None
    if isinstance(headers, Mapping) and isinstance(headers.get(TRACEPARENT), str):
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        carrier = {TRACEPARENT: headers[TRACEPARENT]}
        if isinstance(headers.get("tracestate"), str):
            carrier["tracestate"] = headers["tracestate"]
        ctx = TraceContextTextMapPropagator().extract(carrier)
        from opentelemetry import trace  # noqa: PLC0415

        if trace.get_current_span(ctx).get_span_context().is_valid:
            return ctx
    return origin_context(_origin_of(str(promise.get("id", ""))))


def inject(param: dict[str, Any]) -> dict[str, Any]:
    """Write the current span's ``traceparent`` into a promise ``param`` (in place) when
    tracing is on and a span is current; answers ``param`` either way."""
    if tracer() is None:
        return param
    from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
        TraceContextTextMapPropagator,
    )

    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    if carrier:
        headers = param.get("headers")
        merged = dict(headers) if isinstance(headers, Mapping) else {}
        merged.update(carrier)
        param["headers"] = merged
    return param
