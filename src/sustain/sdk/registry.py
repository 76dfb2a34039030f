"""Registered functions, keyed by (name, version).

A generator function is a *workflow* (retry ``Never`` by default); a plain or ``async def``
function is a *leaf* (retry ``Exponential`` by default) until its body makes a durable call:
then it is a workflow too and its default policy no longer applies (see
``invoke.call_with_retry``); an explicit policy always does.  Every registered function
takes the Context as its first parameter.  ``get(name)`` without a version is the latest.
``add`` refuses, with a ``DefinitionError`` that says what to write instead, a function that
cannot work as registered (mistakes.py).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any, Literal

from sustain.errors import AlreadyRegisteredError, FunctionNotFoundError
from sustain.sdk.mistakes import check_definition
from sustain.sdk.retry import LEAF_DEFAULT, WORKFLOW_DEFAULT, RetryPolicy
from sustain.sdk.typed_values import NO_PARAMETERS, Parameters, return_annotation

Style = Literal["generator", "coroutine", "sync"]
_UNKNOWN = object()


def style_of(fn: Callable[..., Any]) -> Style:
    if inspect.isgeneratorfunction(fn):
        return "generator"
    if inspect.iscoroutinefunction(fn):
        return "coroutine"
    return "sync"


@dataclass(frozen=True)
class Function:
    name: str
    fn: Callable[..., Any]
    version: int
    retry: RetryPolicy
    style: Style
    returns: Any  # the return annotation, results are rebuilt by (typed_values.py)
    explicit_retry: bool = False
    # Its parameters' annotations, arguments read from the wire are rebuilt by; read once
    # here, so a call never inspects hints.
    params: Parameters = NO_PARAMETERS

    @property
    def is_workflow(self) -> bool:
        return self.style != "sync"


class Registry:
    def __init__(self) -> None:
        self._by_name: dict[str, dict[int, Function]] = {}
        self._by_fn: dict[Callable[..., Any], Function] = {}
        # The return annotations of unregistered leaves, by code and annotation (``_returns``).
        self._adhoc: dict[tuple[CodeType, Any], Any] = {}

    def add(
        self,
        fn: Callable[..., Any],
        name: str | None = None,
        version: int = 1,
        retry: RetryPolicy | None = None,
    ) -> Function:
        if not callable(fn):
            raise TypeError(f"register() needs a function, got {fn!r}")
        if version < 1:
            raise ValueError("version must be at least 1")
        key = name or fn.__name__
        check_definition(fn, key)
        versions = self._by_name.setdefault(key, {})
        if version in versions:
            raise AlreadyRegisteredError(key, version)
        style = style_of(fn)
        policy = retry or (WORKFLOW_DEFAULT if style == "generator" else LEAF_DEFAULT)
        entry = Function(
            key, fn, version, policy, style, return_annotation(fn),
            explicit_retry=retry is not None, params=Parameters.of(fn),
        )  # fmt: skip
        versions[version] = entry
        self._by_fn.setdefault(fn, entry)
        return entry

    def get(self, name: str, version: int | None = None) -> Function:
        versions = self._by_name.get(name)
        if not versions:
            raise FunctionNotFoundError(name, version)
        if version is None or version == 0:
            return versions[max(versions)]
        if version not in versions:
            raise FunctionNotFoundError(name, version)
        return versions[version]

    def versions(self) -> dict[str, list[int]]:
        """Every registered name with its versions, sorted (for ``sustain worker``'s banner)."""
        return {name: sorted(v) for name, v in sorted(self._by_name.items())}

    def find_name(self, name: str) -> Function | None:
        """The latest version registered under ``name``, if any."""
        versions = self._by_name.get(name)
        return versions[max(versions)] if versions else None

    def find(self, fn: Callable[..., Any]) -> Function | None:
        return self._by_fn.get(fn)

    def lookup(self, name: str, version: int) -> Function | None:
        """``name`` at ``version`` (0: the latest), if registered here: whose annotations
        an ``rpc`` by name converts its result with."""
        versions = self._by_name.get(name)
        if not versions:
            return None
        return versions.get(version) if version else versions[max(versions)]

    def resolve(
        self, fn_or_name: Callable[..., Any] | str | Function, version: int | None = None
    ) -> Function:
        """A registered function by name or by object; an unregistered callable is an ad-hoc
        entry under its ``__name__`` (fine for ``ctx.run`` leaves, which never leave the
        process)."""
        if isinstance(fn_or_name, Function):
            return fn_or_name
        if isinstance(fn_or_name, str):
            return self.get(fn_or_name, version)
        found = self._by_fn.get(fn_or_name)
        if found is not None:
            return found
        style = style_of(fn_or_name)
        name = getattr(fn_or_name, "__name__", repr(fn_or_name))
        retry = WORKFLOW_DEFAULT if style == "generator" else LEAF_DEFAULT
        return Function(name, fn_or_name, version or 1, retry, style, self._returns(fn_or_name))

    def _returns(self, fn: Callable[..., Any]) -> Any:
        """``return_annotation(fn)``, read once per code and annotations, not per call: a
        leaf called a thousand times, or a closure made anew on each call, shares them.  Not
        keyed by the function, so that no closure (and nothing it captured) is kept; the
        return annotation is part of the key since closures of one ``def`` may annotate with
        different local types."""
        try:
            key = (fn.__code__, fn.__annotations__.get("return"))
            cached = self._adhoc.get(key, _UNKNOWN)
        except (AttributeError, TypeError):  # a partial or callable object; unhashable
            return return_annotation(fn)
        if cached is _UNKNOWN:
            cached = return_annotation(fn)
            if len(self._adhoc) < 4096:  # code objects are few; never grow without bound
                self._adhoc[key] = cached
        return cached
