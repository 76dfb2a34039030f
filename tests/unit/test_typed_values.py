"""The conversion table of docs/errors.md, type by type: a value encoded as SDK-WIRE JSON and
read back by an annotation comes back equal and of its type (sdk/typed_values.py).  The
same conversions across real processes: tests/sdk/test_types_cross.py."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, NamedTuple, Optional, TypedDict
from uuid import UUID

import msgspec
import pydantic
import pytest

from sustain import Context
from sustain.sdk import codec
from sustain.sdk.registry import Registry
from sustain.sdk.typed_values import Parameters, convert


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 2


@dataclass
class Item:
    name: str
    price: Decimal


@dataclass
class Other:
    code: int


class Model(pydantic.BaseModel):
    when: datetime
    items: list[Item]


class Struct(msgspec.Struct):
    at: date
    tags: frozenset[str]


class Row(TypedDict):
    id: UUID
    at: time


class Pair(NamedTuple):
    left: int
    right: str


TABLE: list[tuple[Any, Any]] = [
    (datetime, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
    (datetime, datetime(2026, 1, 2, 3, 4, 5)),  # naive stays naive
    (date, date(2026, 1, 2)),
    (time, time(3, 4, 5)),
    (timedelta, timedelta(days=1, seconds=5)),
    (Decimal, Decimal("12.3400")),  # the digits survive, as a string on the wire
    (UUID, UUID(int=7)),
    (Color, Color.RED),
    (Level, Level.HIGH),
    (bytes, b"\x00\x01\xff"),  # base64 on the wire
    (set[int], {3, 1, 2}),
    (frozenset[str], frozenset({"a"})),
    (tuple[int, str], (1, "a")),
    (Pair, Pair(1, "a")),
    (Item, Item("pen", Decimal("1.50"))),
    (Model, Model(when=datetime(2026, 1, 1, tzinfo=UTC), items=[Item("a", Decimal(1))])),
    (Struct, Struct(date(2026, 1, 1), frozenset({"x"}))),
    (Row, Row(id=UUID(int=1), at=time(1))),
    (dict[str, list[Item]], {"k": [Item("a", Decimal("2"))]}),
    (list[Model], [Model(when=datetime(2026, 1, 1), items=[])]),  # pydantic nested
    (Optional[date], date(2026, 1, 1)),  # noqa: UP045 - the spelling under test
    (date | None, None),
    (int | str, "7"),  # a string stays a string when the union allows it
    (Item | Other, Other(3)),  # two dataclasses: msgspec refuses, tried one by one
    (Literal["a", "b"], "b"),
]


@pytest.mark.parametrize(("annotation", "value"), TABLE, ids=lambda v: repr(v)[:40])
def test_a_value_comes_back_as_its_annotation(annotation: Any, value: Any) -> None:
    wire = codec.decode(codec.encode(value))  # what any reader gets: plain JSON
    back = convert(wire, annotation)
    assert back == value and type(back) is type(value)


def test_a_value_that_does_not_fit_stays_as_it_is() -> None:
    assert convert("not a date", date) == "not a date"
    assert convert({"name": "x"}, Item) == {"name": "x"}  # a field missing
    assert convert([1, 2], Any) == [1, 2] and convert("x", object) == "x"


def typed(ctx: Context, a: int, when: datetime, /, item: Item, *rest: Decimal,
          flag: bool = False, **more: date) -> None:  # fmt: skip
    """Every kind of parameter."""


def plain(ctx: Context, a, b=None):  # type: ignore[no-untyped-def]  # unannotated
    """No annotation anywhere."""


def test_parameters_convert_each_kind_of_argument() -> None:
    params = Parameters.of(typed)
    assert params.typed and params.names == ("a", "when", "item")
    args, kwargs = params.convert(
        "typed",
        [1, "2026-01-02T00:00:00", {"name": "n", "price": "1.5"}, "2", "3"],
        {"flag": True, "since": "2026-01-01", "item": {"name": "m", "price": "2"}},
    )
    assert args == [1, datetime(2026, 1, 2), Item("n", Decimal("1.5")), Decimal(2), Decimal(3)]
    assert kwargs == {"flag": True, "since": date(2026, 1, 1), "item": Item("m", Decimal(2))}


def test_unannotated_functions_pay_nothing_and_keep_the_json() -> None:
    params = Parameters.of(plain)
    assert not params.typed
    args, kwargs = ["2026-01-02"], {"b": {"x": 1}}
    assert params.convert("plain", args, kwargs) == (args, kwargs)
    assert params.convert("plain", args, kwargs)[0] is args  # not even copied


def test_an_argument_that_does_not_fit_is_logged_and_passed_as_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sustain.sdk.typed_values"):
        args, _ = Parameters.of(typed).convert("typed", ["one", "2026-01-02T00:00:00"], {})
        Parameters.of(typed).convert("typed", ["two", "2026-01-03T00:00:00"], {})
    assert args == ["one", datetime(2026, 1, 2)]
    assert "typed: argument 'a' does not fit its annotation int" in caplog.text
    assert caplog.text.count("does not fit") == 1  # once per parameter, not per call


def test_hints_are_read_once_per_function() -> None:
    registry = Registry()
    entry = registry.add(typed)
    assert entry.params.names == ("a", "when", "item")  # read at register
    leaf = registry.resolve(plain)  # an unregistered leaf: read at its first call only
    assert list(registry._adhoc.values()) == [leaf.returns]

    def make(kind: type) -> Any:
        def closure(ctx: Context) -> kind:  # type: ignore[valid-type]  # a new one per call
            return kind()

        closure.__annotations__["return"] = kind  # as it is without future annotations
        return closure

    first, second, third = make(Item), make(Item), make(Other)
    assert registry.resolve(first).returns is Item and registry.resolve(second).returns is Item
    assert registry.resolve(third).returns is Other  # same code, another annotation
    assert len(registry._adhoc) == 3  # plain, closure -> Item, closure -> Other


def test_an_unresolvable_annotation_falls_back_to_json() -> None:
    def broken(ctx: Context, a: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        """Its hint names nothing."""

    params = Parameters.of(broken)
    assert not params.typed
    assert params.convert("broken", ["x"], {}) == (["x"], {})


def test_an_int_given_for_a_float_stays_an_int() -> None:
    """PEP 484's numeric tower: ``f(5)`` with ``secs: float`` receives 5 in a direct call,
    and so through a durable call ("slept for 5 seconds", not "5.0")."""
    assert convert(5, float) == 5 and type(convert(5, float)) is int
    assert type(convert(5.5, float)) is float
    assert type(convert(True, int)) is bool
