"""Errors across the durability boundary: the JSON a rejected promise holds, and the
exception a reader rebuilds from it (never unpickled: only JSON ever comes off the wire).

The value is the official SDKs' error object with Sustain's fields added (both SDKs read
theirs with a lookup and ignore the rest, SDK-WIRE §1.2-1.4)::

    {"__type": "error", "message": str(exc), "name": "PaymentDeclined",   # every SDK
     "stack": "Traceback (most recent call last): ...",                  # TS: Error.stack
     "sustain:type": "shop.errors.PaymentDeclined",                      # module.qualname
     "sustain:args": ["card declined", 402],        # exc.args, when not just [message]
     "sustain:attrs": {"code": 402}}                # vars(exc) entries that encode

A reader rebuilds the same class (``rebuild``) when ``sustain:type`` names one it may use,
else raises ``ApplicationError`` whose ``type`` names it; either way the writer's traceback
is added as a note (``add_note``), so it shows under the reader's own traceback.

Which classes a reader uses, since a value may come from anyone who can write a promise:

- only classes of modules **already imported** in the reading process, looked up in the
  module's and classes' ``__dict__``: reading a value never imports a module nor runs a
  module ``__getattr__`` (a caller that catches ``PaymentDeclined`` has imported it);
- only ``Exception`` subclasses, found at the place they say they are defined (their own
  ``__module__`` and ``__qualname__``), and never ``StopIteration``/``StopAsyncIteration``
  (they steer iteration); ``BaseException`` signals (``SystemExit``, ``CancelledError``,
  Sustain's ``Suspend``) are therefore out;
- built with the class's ``__new__`` and the recorded args, then the recorded attributes
  are put in its ``__dict__``: its ``__init__`` and property setters never run, and every
  value is plain JSON (converted by the class's annotations when it declares them).
"""

from __future__ import annotations

import os
import sys
import traceback
import typing
from typing import Any

from sustain.errors import ApplicationError
from sustain.sdk import typed_values
from sustain.sdk.wire_json import from_json, to_json

_SDK_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
MAX_STACK = 16_384  # characters of traceback kept (the innermost end: where it was raised)
TYPE, ARGS, ATTRS = "sustain:type", "sustain:args", "sustain:attrs"
_REFUSED: tuple[type[BaseException], ...] = (StopIteration, StopAsyncIteration)


def type_name(cls: type[BaseException]) -> str:
    """``module.qualname``: what ``sustain:type`` and ``ApplicationError.type`` hold."""
    return f"{cls.__module__}.{cls.__qualname__}"


def payload(exc: BaseException) -> dict[str, Any]:
    """The JSON object standing for ``exc`` (every field JSON, whatever ``exc`` holds)."""
    if type(exc) is ApplicationError:  # an error read from the wire, going on up
        name = exc.name or "ApplicationError"
        out: dict[str, Any] = {"__type": "error", "message": exc.message, "name": name}
        if exc.type is not None:
            out[TYPE] = exc.type
        attributes = _encodable(exc.attributes) if exc.attributes else None
        if attributes:
            out[ATTRS] = attributes
    else:
        name = exc.name if isinstance(exc, ApplicationError) and exc.name else type(exc).__name__
        out = {"__type": "error", "message": _message(exc), "name": name,
               TYPE: type_name(type(exc))}  # fmt: skip
        args = _encodable(list(exc.args))
        if args is not None and args != [out["message"]]:
            out[ARGS] = args
        attrs = _attributes(exc)
        if attrs:
            out[ATTRS] = attrs
    # The writer's frames, its chain (``raise ... from``) and its notes, where a rebuilt
    # error carries the traceback of the process that raised it first.
    stack = _stack(exc) if exc.__traceback__ is not None else None  # None: never raised
    if stack:
        out["stack"] = stack
    return out


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a __str__ that fails must not turn a rejection into a lost task
        return f"<{type(exc).__name__}: its str() failed>"


def _stack(exc: BaseException) -> str | None:
    try:
        report = traceback.TracebackException.from_exception(exc)
        _user_frames(report, set())
        text = "".join(report.format()).rstrip("\n")
    except Exception:  # the traceback is a courtesy: the error is stored without it
        return None
    if len(text) <= MAX_STACK:
        return text
    return "... (traceback truncated)\n" + text[-MAX_STACK:]


def _user_frames(report: traceback.TracebackException, seen: set[int]) -> None:
    """Leave out the SDK's own frames (the replay and the retry loop around every call),
    in ``report`` and its chain, unless they are all there is (an error of the SDK)."""
    if id(report) in seen:
        return
    seen.add(id(report))
    mine = [frame for frame in report.stack if not frame.filename.startswith(_SDK_DIR)]
    if mine:
        report.stack = traceback.StackSummary.from_list(mine)
    for linked in (report.__cause__, report.__context__, *(report.exceptions or ())):
        if linked is not None:
            _user_frames(linked, seen)


def _encodable(value: Any) -> Any:
    """``value`` as plain JSON, or None when it does not encode."""
    try:
        return from_json(to_json(value))
    except Exception:  # SerializationError, or a model_dump that raises: left out
        return None


def _attributes(exc: BaseException) -> dict[str, Any]:
    """The entries of ``vars(exc)`` that encode (dunders such as ``__notes__`` left out:
    the notes are in the stack)."""
    attrs: dict[str, Any] = {}
    for key, value in vars(exc).items():
        if key.startswith("__"):
            continue
        plain = _encodable(value)
        if plain is not None or value is None:
            attrs[key] = plain
    return attrs


def exception(obj: Any, id: str | None = None) -> Exception:
    """The exception a rejected promise's decoded value stands for."""
    if not isinstance(obj, dict) or obj.get("__type") not in ("error", "aggregate_error"):
        return ApplicationError(str(obj), None, id)
    message = _text(obj.get("message")) or "error"
    name = _text(obj.get("name"))
    stack = _text(obj.get("stack"))
    qualified = _text(obj.get(TYPE))
    attrs = obj.get(ATTRS)
    attrs = {k: v for k, v in attrs.items() if not k.startswith("__")} if isinstance(
        attrs, dict
    ) else {}  # fmt: skip
    cls = allowed_class(qualified) if qualified else None
    exc: Exception | None = None
    if cls is not None:
        args = obj.get(ARGS)
        exc = rebuild(cls, args if isinstance(args, list) else [message], attrs)
    if exc is None:
        exc = ApplicationError(message, name, id, type=qualified or name, attributes=attrs)
    if stack:
        where = f" in promise {id!r}" if id else ""
        exc.add_note(f"Raised{where}, where its traceback was:\n{stack}")
    return exc


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


_FOUND: dict[str, type[Exception]] = {}


def allowed_class(qualified: str) -> type[Exception] | None:
    """The class ``qualified`` names, if a reader may rebuild it (the module docstring).

    A class found is remembered; a miss is not (its module may be imported later), and
    costs a few dict lookups."""
    found = _FOUND.get(qualified)
    if found is None:
        found = _lookup(qualified)
        if found is not None and len(_FOUND) < 4096:  # class names are few: never unbounded
            _FOUND[qualified] = found
    return found


def _lookup(qualified: str) -> type[Exception] | None:
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module = sys.modules.get(".".join(parts[:cut]))
        if module is None:
            continue
        found: Any = vars(module).get(parts[cut])
        for part in parts[cut + 1 :]:
            found = vars(found).get(part) if isinstance(found, type) else None
        if (
            isinstance(found, type)
            and issubclass(found, Exception)
            and not issubclass(found, _REFUSED)
            and found.__module__ == module.__name__
            and found.__qualname__ == ".".join(parts[cut:])
        ):
            return found
        return None  # the longest imported module decides: no lookup in its parents
    return None


def rebuild(cls: type[Exception], args: list[Any], attrs: dict[str, Any]) -> Exception | None:
    """An instance of ``cls`` with ``args`` and ``attrs``, without running its ``__init__``;
    None when its ``__new__`` refuses these args."""
    try:
        exc = cls.__new__(cls, *args)
        exc.args = tuple(args)
    except Exception:  # a __new__ that wants other arguments: ApplicationError instead
        return None
    hints = _hints(cls)
    for key, value in attrs.items():
        hint = hints.get(key)
        exc.__dict__[key] = typed_values.convert(value, hint) if hint is not None else value
    return exc


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The attribute annotations a class declares (``code: int``), for its attributes."""
    hints = _HINTS.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # an unresolvable forward reference: attributes stay plain JSON
            hints = {}
        if len(_HINTS) < 4096:
            _HINTS[cls] = hints
    return hints
