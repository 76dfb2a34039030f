"""Common mistakes in durable functions, recognised and explained (issue 16, item 6).

Each check names the function and says what to write instead.  What the definition alone
shows is checked by ``register`` (``check_definition``): a function with no parameter for the
Context, an ``async def`` generator (neither a workflow nor a leaf), and a plain ``def`` whose
code calls a durable method on its Context parameter (it would run in a thread, where no event
loop runs the call).  The rest is only known when the function runs, and the checks sit on the
error paths, so a call that works pays nothing for them: ``bind_problem`` after a
``TypeError``, ``forgotten`` after a value failed to encode, ``plain_def_call`` when a durable
call finds no running loop.
"""

from __future__ import annotations

import dis
import inspect
from collections.abc import Callable
from types import FunctionType
from typing import TYPE_CHECKING, Any

from sustain.errors import DefinitionError, SignatureError
from sustain.sdk.futures import Begin, DurableFuture

if TYPE_CHECKING:
    from sustain.sdk.context import Context
    from sustain.sdk.registry import Function

# The Context methods that make a durable call (a plain def cannot make one).
DURABLE_METHODS = frozenset(
    {"run", "begin_run", "rpc", "begin_rpc", "sleep", "promise", "detached", "now", "random",
     "uuid"}
)  # fmt: skip
_INSTEAD = (
    "make it a generator (`x = yield ctx.run(...)`) or `async def` (`x = await ctx.run(...)`)"
)


def check_definition(fn: Callable[..., Any], name: str) -> None:
    """Raise ``DefinitionError`` for a function that cannot work as registered."""
    if inspect.isasyncgenfunction(fn):
        raise DefinitionError(
            name,
            "an `async def` that yields is an async generator, neither a workflow nor a step: "
            "write a generator (`def` with `yield ctx.run(...)`) or an `async def` with "
            "`await ctx.run(...)`, not both",
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin or C callable without a signature: nothing to check here
    positional = [
        p for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]  # fmt: skip
    if not positional:
        raise DefinitionError(
            name,
            f"takes no parameter for the Context, which every registered function gets "
            f"first: write `def {name}(ctx: Context{', ...' if signature.parameters else ''})`",
        )
    plain = not (inspect.isgeneratorfunction(fn) or inspect.iscoroutinefunction(fn))
    method = _durable_call_on(fn, positional[0].name) if isinstance(fn, FunctionType) else None
    if plain and method is not None:
        raise DefinitionError(
            name,
            f"is a plain `def` that calls `{positional[0].name}.{method}(...)`; a plain "
            f"def runs as a step in a thread and cannot make durable calls: {_INSTEAD}",
        )


def _durable_call_on(fn: FunctionType, param: str) -> str | None:
    """The durable method the code calls on its first parameter, if any (``ctx.run``)."""
    previous: dis.Instruction | None = None
    for instruction in dis.get_instructions(fn):
        if (
            previous is not None
            and previous.opname == "LOAD_FAST"
            and previous.argval == param
            and instruction.opname in ("LOAD_METHOD", "LOAD_ATTR")
            and instruction.argval in DURABLE_METHODS
        ):
            return str(instruction.argval)
        previous = instruction
    return None


def plain_def_call(function: str, kind: str, callee: str) -> DefinitionError:
    """A durable call made where no event loop runs: from a plain def, in its thread."""
    return DefinitionError(
        function,
        f"made a durable call (ctx.{kind} of {callee!r}) from a thread, which is where a plain "
        f"`def` runs: {_INSTEAD}",
    )


def bind_problem(function: Function, ctx: Context, args: Any, kwargs: Any) -> SignatureError | None:
    """The ``SignatureError`` if the call does not bind to the function's parameters, else
    None (the ``TypeError`` came from the body, an ordinary error)."""
    fn, name = function.fn, function.name
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(ctx, *args, **kwargs)
    except TypeError as exc:
        reason = str(exc)
    else:
        return None
    given = ", ".join(["ctx", *map(_short, args), *(f"{k}={_short(v)}" for k, v in kwargs.items())])
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        pass
    else:  # the arguments fit without the Context: the Context parameter is missing
        rest = _plain(signature)[1:]
        reason += (
            "; every registered function takes the Context first: write "
            f"`def {name}(ctx: Context, {rest}`"
        )
    return SignatureError(name, _plain(signature), f"({given})", reason, ctx.id)


def _plain(signature: inspect.Signature) -> str:
    """``(ctx, a, b=1)``: the parameters without their annotations, which the message
    does not need (and which are strings under ``from __future__ import annotations``)."""
    empty = inspect.Parameter.empty
    bare = [p.replace(annotation=empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=bare, return_annotation=empty))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def forgotten(value: Any, depth: int = 3) -> DurableFuture[Any] | None:
    """A DurableFuture in ``value`` (a forgotten ``yield``/``await``), searched a few levels
    into lists, tuples and dicts."""
    if isinstance(value, Begin):
        return value.future
    if isinstance(value, DurableFuture):
        return value
    if depth and isinstance(value, (list, tuple)):
        items: Any = value
    elif depth and isinstance(value, dict):
        items = value.values()
    else:
        return None
    for item in items:
        found = forgotten(item, depth - 1)
        if found is not None:
            return found
    return None


def forgotten_error(function: str, future: DurableFuture[Any], where: str) -> DefinitionError:
    return DefinitionError(
        function,
        f"{where} holds the durable call {future.id!r} itself, not its value: a `yield` (in a "
        f"generator) or an `await` (in an `async def`) is missing before that ctx call",
    )
