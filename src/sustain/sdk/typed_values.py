"""Values rebuilt by type hints: a function's arguments by its parameters' annotations, its
result by its return annotation (msgspec's ``convert``, made for this).

JSON carries no types: a ``datetime`` crosses as a string, a ``set`` as a list, a dataclass
as an object.  The reader knows the types from the function's hints, so it rebuilds them:
dataclasses, msgspec Structs, pydantic models (anywhere in the value, through a ``dec_hook``),
``TypedDict``, ``NamedTuple``, ``datetime``/``date``/``time``/``timedelta``, ``Decimal``,
``UUID``, enums, ``bytes``, ``set``/``frozenset``/``tuple``, nested containers, ``Optional``
and unions (a union msgspec refuses, such as two dataclasses, is tried member by member).

An unannotated parameter (or ``Any``, or ``object``) keeps the JSON as it is.  A value that
does not fit its annotation also stays as it is (a result silently, as before; an argument
with a WARNING naming the function and the parameter, once per parameter): hints are often
looser than the values that really flow, and such a call worked before hints were read.

A function's hints are read once, when it is registered (``Parameters.of``), never per call;
a function without annotated parameters costs one attribute test per call.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

log = logging.getLogger(__name__)

_PLAIN = frozenset({int, str, float, bool, list, dict})


def _keeps(annotation: Any) -> bool:
    """An annotation that asks for the JSON as it is (none, ``Any``, ``object``)."""
    return annotation is None or annotation is Any or annotation is object


def _dec_hook(annotation: Any, obj: Any) -> Any:
    """msgspec's hook for types it does not know: pydantic models, wherever they nest."""
    validate = getattr(annotation, "model_validate", None)
    if callable(validate):
        return validate(obj)
    raise NotImplementedError(f"{annotation!r} is not a type msgspec converts")


def convert_strict(obj: Any, annotation: Any) -> Any:
    """``obj`` (plain JSON) as ``annotation``; raises when it does not fit."""
    if obj is None or _keeps(annotation):
        return obj
    if type(obj) is annotation and annotation in _PLAIN:
        return obj  # already what was asked for (msgspec would hand back the same value)
    if annotation is float and type(obj) is int:
        return obj  # an int is a float to the type system (PEP 484): a direct call keeps it
    validate = getattr(annotation, "model_validate", None)
    if callable(validate):
        return validate(obj)
    try:
        return msgspec.convert(obj, annotation, strict=False, dec_hook=_dec_hook)
    except TypeError:  # a type msgspec refuses (a union of two dataclasses): one by one
        if typing.get_origin(annotation) not in (typing.Union, _UnionType):
            raise
        failure: Exception | None = None
        for member in typing.get_args(annotation):
            try:
                return convert_strict(obj, member)
            except Exception as exc:
                failure = exc
        assert failure is not None
        raise failure from None


_UnionType = type(int | str)


def convert(obj: Any, annotation: Any) -> Any:
    """``obj`` as ``annotation`` when it fits, else ``obj`` unchanged."""
    try:
        return convert_strict(obj, annotation)
    except Exception:  # msgspec.ValidationError, pydantic's, an unsupported annotation
        return obj


def _kept(annotation: Any) -> Any:
    return None if _keeps(annotation) else annotation


@dataclass(frozen=True)
class Parameters:
    """The annotations of a function's parameters after the Context, read once."""

    positional: tuple[Any, ...] = ()  # by position; None where unannotated
    names: tuple[str, ...] = ()  # the positional parameters' names (for messages)
    by_name: Mapping[str, Any] = field(default_factory=dict)  # keyword-capable ones
    var_args: Any = None  # the element annotation of ``*args``
    var_kwargs: Any = None  # the value annotation of ``**kwargs``
    typed: bool = False  # any annotation to convert by: False skips every conversion

    @staticmethod
    def of(fn: Callable[..., Any]) -> Parameters:
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):  # a builtin or C callable: plain JSON
            return NO_PARAMETERS
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # an unresolvable forward reference: plain JSON, as before
            hints = {}
        params = list(signature.parameters.values())
        first = params[0].kind if params else None
        if first in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            params = params[1:]  # the Context
        positional: list[Any] = []
        names: list[str] = []
        by_name: dict[str, Any] = {}
        var_args = var_kwargs = None
        for p in params:
            annotation = _kept(hints.get(p.name))
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                positional.append(annotation)
                names.append(p.name)
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                by_name[p.name] = annotation
            if p.kind == p.VAR_POSITIONAL:
                var_args = annotation
            if p.kind == p.VAR_KEYWORD:
                var_kwargs = annotation
        typed = any(a is not None for a in (*positional, *by_name.values(), var_args, var_kwargs))
        return Parameters(tuple(positional), tuple(names), by_name, var_args, var_kwargs, typed)

    def annotation(self, where: int | str) -> Any:
        """The annotation of positional argument ``where`` (an index) or keyword ``where``."""
        if isinstance(where, int):
            return self.positional[where] if where < len(self.positional) else self.var_args
        return self.by_name.get(where, self.var_kwargs)

    def name(self, where: int | str) -> str:
        """How a message names argument ``where``: its parameter, else its position."""
        if isinstance(where, int):
            return repr(self.names[where]) if where < len(self.names) else f"#{where + 1}"
        return repr(where)

    def convert(
        self, function: str, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """The arguments of a call read from the wire, rebuilt by their annotations."""
        if not self.typed:
            return args, kwargs
        out = list(args)
        for i, value in enumerate(args):
            out[i] = self._one(function, i, value)
        named = {key: self._one(function, key, value) for key, value in kwargs.items()}
        return out, named

    def _one(self, function: str, where: int | str, value: Any) -> Any:
        annotation = self.annotation(where)
        if annotation is None:
            return value
        try:
            return convert_strict(value, annotation)
        except Exception as exc:
            key = (function, self.name(where))
            if key not in _WARNED and len(_WARNED) < 4096:  # once each: not a line per call
                _WARNED.add(key)
                log.warning(
                    "%s: argument %s does not fit its annotation %s (%s); passed as JSON "
                    "(said once per parameter)", function, key[1], _type_text(annotation), exc,
                )  # fmt: skip
            return value


NO_PARAMETERS = Parameters()
_WARNED: set[tuple[str, str]] = set()  # (function, parameter) already warned about


def _type_text(annotation: Any) -> str:
    return getattr(annotation, "__qualname__", None) or repr(annotation)


def return_annotation(fn: Callable[..., Any]) -> Any:
    """The declared result type (a generator's return type), or Any."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an unresolvable forward reference: fall back to plain JSON
        return Any
    ret = hints.get("return", Any)
    origin = typing.get_origin(ret)
    if origin is not None and getattr(origin, "__name__", "") in ("Generator", "Coroutine"):
        args = typing.get_args(ret)
        return args[2] if origin.__name__ == "Generator" and len(args) == 3 else Any
    return ret
