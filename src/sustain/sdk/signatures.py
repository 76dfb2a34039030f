"""The shapes of durable functions, for type checkers (mypy, pyright, an IDE).

A registered function takes the ``Context`` first, then its own parameters ``P``; what a
call of it gives back (``Handle[R]``, ``DurableFuture[R]``) depends on how it is written:

- ``Workflow[P, Y, S, R]``: a generator function; ``R`` is the generator's *return* type
  (``Generator[DurableFuture[Any], Any, R]``), not what it yields.
- ``AsyncFunction[P, Y, S, R]``: an ``async def``; ``R`` is what the coroutine returns.
- ``Step[P, R]``: a plain ``def``; ``R`` is its return type.

``Sustain.run``/``rpc`` and ``Context.run``/``rpc``/``detached`` are overloaded on these
three, in this order (a generator or coroutine function also matches ``Step``, with the
generator itself as ``R``: the more precise shapes must come first), and then on a ``str``
name, which stays untyped (``Handle[Any]``).  Everything here is erased at run time: the
aliases only describe, nothing checks them while a workflow runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeAlias, TypeVar

if TYPE_CHECKING:
    from sustain.sdk.context import Context

P = ParamSpec("P")
R = TypeVar("R")
# What a generator yields and is sent, or a coroutine's own two: type variables, never Any.
# With Any in the shape, a generator annotated `Generator[DurableFuture[Any], Any, R]` would
# match `Step` as precisely as `Workflow`, and mypy answers an overload that Any makes
# ambiguous with Any: the handle's type would be lost.  With variables both inferred shapes
# are the user's own type, so the first overload wins.
Y = TypeVar("Y")
S = TypeVar("S")
# What ``register`` hands back: the very function it was given, typed as it was.
F = TypeVar("F", bound=Callable[..., Any])

# "Context" is a forward reference: context.py imports these aliases, so this module cannot
# import it at run time (the aliases are never evaluated by anything but a checker).
Workflow: TypeAlias = Callable[Concatenate["Context", P], Generator[Y, S, R]]
AsyncFunction: TypeAlias = Callable[Concatenate["Context", P], Coroutine[Y, S, R]]
Step: TypeAlias = Callable[Concatenate["Context", P], R]
