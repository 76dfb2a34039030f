"""One call of a registered function, as a replay pass makes it: ``invoke`` runs it in its
style (coroutine, generator driven by ``drive``, or sync leaf in a thread); ``call_with_retry``
retries it by its policy with visible attempts; ``explain_type_error`` and ``returned`` turn
the ``TypeError`` of a common mistake into a message that says what to write instead.

Split from replay.py, which decides *whether* a call runs; this module is *how* it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Generator
from types import FunctionType
from typing import Any

from sustain.errors import DefinitionError, SerializationError, SustainError
from sustain.runtime.clock import Clock
from sustain.sdk import leaves, mistakes, status, worker_metrics
from sustain.sdk.context import Context
from sustain.sdk.futures import Begin, DurableFuture
from sustain.sdk.registry import Function
from sustain.sdk.retry import RetryPolicy

log = logging.getLogger(__name__)


async def invoke(function: Function, ctx: Context, args: Any, kwargs: Any) -> Any:
    fn = function.fn
    if function.style == "coroutine":
        return await fn(ctx, *args, **kwargs)
    if function.style == "generator":
        return await drive(fn(ctx, *args, **kwargs))
    # A plain function is sync; only another callable may have an ``async def __call__``.
    if type(fn) is not FunctionType and asyncio.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004
    ):
        return await fn(ctx, *args, **kwargs)
    return await leaves.run(fn, ctx, *args, **kwargs)  # in a thread: a sync leaf may block


async def drive(gen: Generator[Any, Any, Any]) -> Any:
    """Run a generator workflow: each yielded future is awaited and its value sent back."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            item = gen.throw(error) if error is not None else gen.send(value)
        except StopIteration as stop:
            return stop.value
        value, error = None, None
        if isinstance(item, Begin):
            value = item.future
        elif isinstance(item, DurableFuture):
            try:
                value = await item
            except Exception as exc:
                error = exc
            except BaseException:
                gen.close()
                raise
        else:
            error = TypeError(f"a workflow must yield durable calls, not {item!r}")


async def call_with_retry(  # noqa: PLR0917 - the call, and how it is retried
    function: Function,
    ctx: Context,
    args: Any,
    kwargs: Any,
    clock: Clock,
    policy: RetryPolicy | None = None,
) -> Any:
    """Run the function, retrying by its policy; a body that made durable calls is a
    workflow and is not retried by a *default* policy (new attempts would mint new ids).

    Every failed attempt that is retried is logged at WARNING with its traceback (Python
    shows WARNING by default, and the policy's backoff spaces the lines out), and so is the
    last one of a call that was retried; each is also written as the call's status record
    (sdk/status.py: attempts, error, traceback, next retry), which a success never writes.
    A ``TypeError`` whose arguments do not bind to the function's parameters becomes a
    ``SignatureError`` (never retried: a programming error).
    """
    explicit = policy is not None or function.explicit_retry
    policy = policy or function.retry
    env = ctx._pass.env
    retrying = env.retrying
    observe = env.observe
    attempt = 1
    try:
        while True:
            try:
                if observe is not None:
                    observe(function.name, ctx.id)
                return await invoke(function, ctx, args, kwargs)
            except Exception as exc:
                if isinstance(exc, TypeError):
                    mistake = explain_type_error(function, ctx, args, kwargs, exc)
                    if mistake is not None:
                        raise mistake from exc
                if ctx.calls and not explicit:
                    raise
                now = clock.now()
                pause = policy.next_delay(attempt, exc, now, ctx.info.timeout_at)
                if pause is None:
                    if attempt > 1:
                        log.warning(
                            "%s (%s) failed on attempt %d; not retried again", ctx.id,
                            function.name, attempt, exc_info=exc, extra={"promise_id": ctx.id},
                        )  # fmt: skip
                        # the record stays as the history of a call that was retried
                        await env.status.write(ctx.id, status.failure(exc, attempt, None))
                    raise
                log.warning(
                    "%s (%s) failed on attempt %d; retrying in %.1fs", ctx.id, function.name,
                    attempt, pause, exc_info=exc, extra={"promise_id": ctx.id},
                )  # fmt: skip
                worker_metrics.retry(function.name)
                # kept through the next attempt too: the last error known, until the call ends
                retrying[ctx.id] = f"attempt {attempt} raised {exc!r}"
                record = status.failure(exc, attempt, now + int(pause * 1000))
                await env.status.write(ctx.id, record)  # the failure path only
                await clock.sleep(pause)
                attempt += 1
                ctx = ctx.retried(attempt)
    finally:
        if retrying:  # ended or abandoned: its last error is no longer "retrying"
            retrying.pop(ctx.id, None)


def returned(function: str, value: Any, exc: SerializationError) -> SustainError:
    """The error of a value that does not encode, naming the function and the value's type;
    a DefinitionError when it holds a DurableFuture (``return ctx.run(...)`` without
    ``yield``/``await``)."""
    future = mistakes.forgotten(value)
    if future is None:
        kind = type(value).__qualname__
        detail = exc.reason.removeprefix("Cannot encode value as JSON: ")
        return SerializationError(
            f"the value {function} returned ({kind}) cannot be encoded as JSON: {detail}", exc.id,
            function=function, parameter="return", type=kind,
        )  # fmt: skip
    return mistakes.forgotten_error(function, future, "the value it returned")


def explain_type_error(
    function: Function, ctx: Context, args: Any, kwargs: Any, exc: TypeError
) -> SustainError | None:
    """The mistake behind a ``TypeError``, if it is one we recognise: arguments that do not
    bind, or a DurableFuture used as a value (a forgotten yield/await)."""
    found = mistakes.bind_problem(function, ctx, args, kwargs)
    if found is not None:
        return found
    passed = mistakes.forgotten((args, kwargs))
    if passed is not None:  # ctx.run(f, ctx.run(g)): the caller forgot the yield/await
        where = f"an argument of this call, from {ctx.info.parent_id!r},"
        return mistakes.forgotten_error(function.name, passed, where)
    if "DurableFuture" in str(exc):
        return DefinitionError(
            function.name,
            f"{exc}: a `yield` (generator) or an `await` (async def) is missing before a "
            "ctx call, so its DurableFuture was used as if it were the value",
        )
    return None
