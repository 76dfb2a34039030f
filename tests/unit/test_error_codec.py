"""The error object on the wire (sdk/error_codec.py), and what a reader refuses to rebuild.

The value of a rejected promise may come from anyone who can write one: reading it must
never import a module, run a module ``__getattr__``, run an exception's ``__init__``, or
hand back a control-flow exception.  Whatever it refuses arrives as ``ApplicationError``
whose ``type`` names what was asked for.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from sustain import ApplicationError, CanceledError, NonRetryableError, SignatureError
from sustain.sdk import codec, error_codec


class Declined(Exception):
    inits: list[str] = []  # noqa: RUF012 - a record of every __init__ run, shared on purpose

    def __init__(self, card: str, code: int) -> None:
        Declined.inits.append(card)
        super().__init__(f"card {card} declined")
        self.card = card
        self.code = code
        self.handle = object()  # does not encode: left out


class Picky(Exception):
    def __new__(cls, *args: Any) -> Picky:
        if len(args) != 2:
            raise TypeError("Picky wants two arguments")
        return super().__new__(cls, *args)


def raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


def round_trip(exc: BaseException, id: str | None = "p-1") -> Exception:
    return codec.error_of(codec.decode(codec.encode_error(exc, id)), id)


def hostile(type_name: str, **extra: Any) -> dict[str, Any]:
    return {"__type": "error", "message": "m", "name": "X", "sustain:type": type_name, **extra}


def test_the_wire_object_keeps_the_official_fields_and_adds_ours() -> None:
    exc = raised(Declined("4242", 402))
    payload = codec.decode(codec.encode_error(exc))
    assert payload["__type"] == "error" and payload["message"] == "card 4242 declined"
    assert payload["name"] == "Declined"  # what the TS SDK shows, as before
    assert payload["sustain:type"] == f"{__name__}.Declined"
    assert "sustain:args" not in payload  # args == [message]: nothing to add
    assert payload["sustain:attrs"] == {"card": "4242", "code": 402}
    assert payload["stack"].startswith("Traceback (most recent call last):")
    assert payload["stack"].endswith("Declined: card 4242 declined")


def test_a_class_is_rebuilt_without_running_its_init() -> None:
    Declined.inits.clear()
    exc = round_trip(raised(Declined("4242", 402)))
    assert Declined.inits == ["4242"]  # the original's, not the reader's
    assert type(exc) is Declined and (exc.card, exc.code) == ("4242", 402)
    assert not hasattr(exc, "handle")
    assert exc.__notes__[0].startswith("Raised in promise 'p-1', where its traceback was:")
    assert "raise exc" in exc.__notes__[0]


def test_args_other_than_the_message_cross() -> None:
    exc = round_trip(KeyError("k"))
    assert type(exc) is KeyError and exc.args == ("k",) and str(exc) == "'k'"
    os_error = round_trip(FileNotFoundError(2, "No such file"))
    assert type(os_error) is FileNotFoundError and os_error.errno == 2
    assert round_trip(Picky(1, 2)).args == (1, 2)


def test_the_sdks_own_errors_come_back_with_their_attributes() -> None:
    error = round_trip(SignatureError("f", "(ctx, a)", "(ctx, 1, 2)", "too many", "p-9"))
    assert type(error) is SignatureError
    assert (error.function, error.reason, error.id) == ("f", "too many", "p-9")
    assert type(round_trip(NonRetryableError("no"))) is NonRetryableError
    canceled = round_trip(CanceledError("p-2"))
    assert type(canceled) is CanceledError and canceled.id == "p-2"


def test_an_application_error_going_on_up_keeps_the_original_type() -> None:
    first = codec.error_of(hostile("nowhere.Gone", **{"sustain:attrs": {"n": 1}}), "c-1")
    assert isinstance(first, ApplicationError) and first.type == "nowhere.Gone"
    again = round_trip(raised(first), "p-1")  # a parent that did not catch it
    assert isinstance(again, ApplicationError)
    assert (again.type, again.name, again.attributes) == ("nowhere.Gone", "X", {"n": 1})
    reason = codec.error_of(codec.decode(codec.encode_error(ApplicationError("no budget"))))
    assert isinstance(reason, ApplicationError) and reason.message == "no budget"


@pytest.mark.parametrize(
    "type_name",
    [
        "builtins.SystemExit",  # BaseException: would stop the reader
        "builtins.KeyboardInterrupt",
        "asyncio.exceptions.CancelledError",
        "sustain.errors.Suspend",  # the replay's own signal
        "builtins.StopIteration",  # would end a caller's iteration
        "builtins.StopAsyncIteration",
        "os.system",  # not a class at all
        "builtins.object",  # a class, not an exception
        f"{__name__}.Picky.__new__",
        f"{__name__}.ValueError",  # a builtin seen through this module: not defined here
        "tests.unit.test_error_codec.<locals>.Gone",
        "",
        "Declined",  # no module
    ],
)
def test_what_a_reader_refuses_to_rebuild(type_name: str) -> None:
    exc = codec.error_of(hostile(type_name))
    assert type(exc) is ApplicationError
    assert exc.type == (type_name or "X")


def test_reading_never_imports_a_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "imported"
    (tmp_path / "booby_trap.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nclass Boom(Exception):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    exc = codec.error_of(hostile("booby_trap.Boom"))
    assert type(exc) is ApplicationError and exc.type == "booby_trap.Boom"
    assert not marker.exists() and "booby_trap" not in sys.modules
    __import__("booby_trap")  # once the reader's own code imports it, it is rebuilt
    try:
        assert type(codec.error_of(hostile("booby_trap.Boom"))).__name__ == "Boom"
    finally:
        del sys.modules["booby_trap"]


def test_reading_never_runs_a_module_getattr(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    lazy = types.ModuleType("lazy_mod")
    lazy.__getattr__ = lambda name: asked.append(name) or ValueError  # type: ignore[method-assign]
    monkeypatch.setitem(sys.modules, "lazy_mod", lazy)
    assert type(codec.error_of(hostile("lazy_mod.Anything"))) is ApplicationError
    assert asked == []


def test_hostile_attributes_stay_data() -> None:
    exc = codec.error_of(hostile(
        f"{__name__}.Declined",
        **{"sustain:attrs": {"__class__": "x", "__dict__": {}, "code": 7},
           "sustain:args": ["a"]},
    ))  # fmt: skip
    assert type(exc) is Declined and exc.code == 7 and exc.args == ("a",)
    assert "__class__" not in vars(exc)
    refused = codec.error_of(hostile(f"{__name__}.Picky", **{"sustain:args": [1]}))
    assert type(refused) is ApplicationError  # its __new__ refused: no crash, no Picky


def test_errors_of_other_sdks_and_old_sustain_values() -> None:
    ts = codec.error_of({"__type": "error", "message": "m", "name": "TypeError",
                         "stack": "TypeError: m\n    at f (app.js:1:1)"}, "t-1")  # fmt: skip
    assert type(ts) is ApplicationError and (ts.name, ts.type) == ("TypeError", "TypeError")
    assert "at f (app.js:1:1)" in ts.__notes__[0]
    py = codec.error_of({"__type": "error", "message": "m", "__py_pickle": "gASVAAAA"})
    assert type(py) is ApplicationError and py.type is None  # the pickle is never read
    old = codec.error_of({"__type": "error", "message": "boom", "name": "ValueError"})
    assert type(old) is ApplicationError and old.type == "ValueError"  # a name alone: no class
    assert codec.error_of("just text").message == "just text"


def test_a_long_traceback_keeps_its_innermost_end() -> None:
    def ping(n: int) -> None:  # two functions in turn: no frame repeats its predecessor
        if n == 0:
            raise ValueError("bottom")
        pong(n - 1)

    def pong(n: int) -> None:
        ping(n - 1)

    try:
        ping(400)
    except ValueError as exc:
        stack = codec.decode(codec.encode_error(exc))["stack"]
    assert len(stack) <= error_codec.MAX_STACK + 100
    assert stack.startswith("... (traceback truncated)") and stack.endswith("ValueError: bottom")


class Sulky(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_an_error_that_resists_encoding_still_rejects() -> None:
    exc = raised(Sulky(object()))  # an argument that does not encode, a __str__ that fails
    exc.broken = Duck()  # type: ignore[attr-defined]
    payload = codec.decode(codec.encode_error(exc))
    assert payload["message"] == "<Sulky: its str() failed>"
    assert "sustain:args" not in payload and "sustain:attrs" not in payload
    assert payload["stack"].endswith("<exception str() failed>")
    again = codec.error_of(payload)
    assert type(again) is Sulky and again.args == ("<Sulky: its str() failed>",)


class Duck:
    def model_dump(self, mode: str = "python") -> Any:
        raise ValueError("cannot dump")
