"""One OpenTelemetry span per ``POST /`` operation of the server (off unless configured).

``request_tracer()`` is called once when the app is built: it installs a provider from
``OTEL_TRACES_EXPORTER`` when the process has none (``configure_from_env`` of
runtime/trace_context.py, the trace-context module the SDK uses too) and answers the tracer,
or None when tracing is off.  Only then does ``App`` replace its
``_operate`` with ``traced(...)``: with tracing off the request path is unchanged.

The span's parent is the execution's trace, so the server's work shows up in the same trace
as the SDK's spans: the ``traceparent`` in the promise ``param.headers`` of a create (plain,
or inside ``task.create`` / ``task.fence``), else the trace derived from the origin of the id
the operation touches (see runtime/trace_context.py); an operation on no id (a search)
starts a trace of its own.  Each element of a ``sustain.batch`` is such an operation, with its own
span in its own execution's trace (a batch may carry the steps of many executions).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from sustain.runtime import trace_context

if TYPE_CHECKING:
    from sustain.protocol.envelope import Request

# (request, the batch's claims, the batch's answer budget): App._operate.
Operate = Callable[["Request", "dict[str, Any] | None", Any], Coroutine[Any, Any, tuple[int, Any]]]


def request_tracer() -> Any | None:
    trace_context.configure_from_env()
    return trace_context.tracer()


def _target(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The promise-like record a request is about (``{"id", "param"?}``), if any."""
    action = data.get("action")
    if isinstance(action, Mapping):
        inner = action.get("data")
        if isinstance(inner, Mapping) and isinstance(inner.get("id"), str):
            return inner
    for key in ("id", "awaited", "promiseId"):
        if isinstance(data.get(key), str):
            return {"id": data[key], "param": data.get("param")}
    tasks = data.get("tasks")
    if isinstance(tasks, list) and tasks and isinstance(tasks[0], Mapping):
        first = tasks[0].get("id")
        if isinstance(first, str):
            return {"id": first}
    return None


def traced(tracer: Any, operate: Operate) -> Operate:
    from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: PLC0415

    async def operate_traced(
        request: Request, claims: dict[str, Any] | None = None, budget: Any = None
    ) -> tuple[int, Any]:
        target = _target(request.data)
        context = trace_context.context_of(target) if target is not None else None
        attributes: dict[str, Any] = {
            "sustain.kind": request.kind,
            "sustain.corr_id": request.corr_id,
        }
        if target is not None:
            attributes["sustain.id"] = target["id"]
        with tracer.start_as_current_span(
            f"sustain {request.kind}", context=context, kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            status, data = await operate(request, claims, budget)
            span.set_attribute("sustain.status", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, str(data)))
            return status, data

    return operate_traced
