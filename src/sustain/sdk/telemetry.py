"""The seam between the replay runtime and observability (runtime/trace_context.py,
worker_metrics.py).

``runner.run_task`` passes each task attempt through ``task`` and ``ReplayPass.start``
passes each durable call through ``call``.  Both answer the coroutine they were given,
untouched, when tracing is off and no metrics port is open: the hot path then costs one
function call and a dictionary lookup per call.  Otherwise the coroutine is wrapped in one
that opens a span (made current, so the durable calls of a pass are children of its task
span and a remote call's ``traceparent`` names its own span) and records the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from sustain.runtime import trace_context
from sustain.sdk import worker_metrics

T = TypeVar("T")


def task(
    pid: str, task: Mapping[str, Any], promise: Mapping[str, Any], run: Coroutine[Any, Any, T]
) -> Coroutine[Any, Any, T]:
    """One task attempt (``run_task``): a span child of the promise's trace context."""
    tracer = trace_context.tracer()
    if tracer is None and worker_metrics.current is None:
        return run
    return _task(tracer, pid, task, promise, run)


async def _task(
    tracer: Any,
    pid: str,
    task: Mapping[str, Any],
    promise: Mapping[str, Any],
    run: Coroutine[Any, Any, T],
) -> T:
    stats = worker_metrics.current
    if stats is not None:
        stats.running.inc()
    outcome = "error"
    try:
        if tracer is None:
            result = await run
        else:
            func = _func(promise)
            attributes = {
                "sustain.task.id": str(task.get("id")),
                "sustain.task.version": int(task.get("version") or 0),
                "sustain.function": func,
                "sustain.pid": pid,
            }
            with tracer.start_as_current_span(
                f"sustain.task {func}" if func else "sustain.task",
                context=trace_context.context_of(promise),
                attributes=attributes,
            ):
                result = await run
        outcome = "fulfilled" if result is not None else "returned"
        return result
    finally:
        if stats is not None:
            stats.running.dec()
            stats.attempts.labels(outcome).inc()


def _func(promise: Mapping[str, Any]) -> str:
    from sustain.sdk import codec  # noqa: PLC0415

    return codec.recorded_func(promise.get("param")) or ""


def call(
    cache: Mapping[str, Any], kind: str, id: str, func: str, op: Coroutine[Any, Any, T]
) -> Coroutine[Any, Any, T]:
    """One durable call of a pass; a call the replay cache answers is not observed."""
    tracer = trace_context.tracer()
    if tracer is None and worker_metrics.current is None:
        return op
    cached = cache.get(id)
    if cached is not None and cached.get("state") != "pending":
        return op
    return _call(tracer, kind, id, func, op)


async def _call(tracer: Any, kind: str, id: str, func: str, op: Coroutine[Any, Any, T]) -> T:
    stats = worker_metrics.current
    started = time.perf_counter()
    try:
        if tracer is None:
            return await op
        name = f"sustain.{kind} {func}" if kind not in ("sleep", "promise") else f"sustain.{kind}"
        attributes = {"sustain.id": id, "sustain.kind": kind, "sustain.function": func}
        with tracer.start_as_current_span(name, attributes=attributes) as span:
            result = await op
            error = getattr(result, "error", None)
            if error is not None:
                from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

                span.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
            return result
    finally:
        if stats is not None:
            stats.steps.labels(kind).observe(time.perf_counter() - started)
