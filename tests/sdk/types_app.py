"""Typed functions and exception classes for the cross-process tests of errors and data
(issue 16, items 3 and 4): ``tests/sdk/types_worker.py`` serves them in a worker process,
the test process registers them too (``register``) so it knows their annotations.

``hidden`` raises a class of ``tests.sdk.types_hidden``, a module only the worker imports
(inside the function): the caller cannot rebuild it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict
from uuid import UUID

import msgspec
import pydantic

from sustain import Context, Never, Sustain


class PaymentDeclined(Exception):
    """A user's exception with attributes its ``__init__`` sets."""

    def __init__(self, card: str, code: int) -> None:
        self.card, self.code = card, code
        super().__init__(f"card {card} declined")


class OutOfStock(Exception):
    """Annotated attributes come back as their type (a datetime, not its string)."""

    sku: str
    since: datetime

    def __init__(self, sku: str, since: datetime) -> None:
        self.sku, self.since = sku, since
        super().__init__(f"{sku} out of stock since {since:%Y-%m-%d}")


class Tier(enum.Enum):
    GOLD = "gold"
    SILVER = "silver"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass
class Line:
    sku: str
    qty: int
    price: Decimal


class Customer(pydantic.BaseModel):
    name: str
    since: date


class Address(msgspec.Struct):
    city: str
    zip: str


class Meta(TypedDict):
    source: str
    at: datetime


class Span(NamedTuple):
    start: time
    length: timedelta


@dataclass
class Order:
    id: UUID
    placed: datetime
    lines: list[Line]
    customer: Customer
    ship_to: Address
    tier: Tier
    priority: Priority
    tags: set[str]
    meta: Meta
    window: Span
    blob: bytes
    note: str | None = None


@dataclass
class Receipt:
    order: Order
    total: Decimal
    arrived: dict[str, str]  # what type each argument arrived as in the function


def kinds(**values: Any) -> dict[str, str]:
    return {name: type(value).__name__ for name, value in values.items()}


async def book(
    ctx: Context,
    order: Order,
    day: date,
    discount: Decimal | None = None,
    *,
    codes: frozenset[str] = frozenset(),
    by_sku: dict[str, Line] | None = None,
) -> Receipt:
    total = sum((line.price * line.qty for line in order.lines), Decimal(0))
    arrived = kinds(
        order=order, day=day, discount=discount, codes=codes, placed=order.placed,
        customer=order.customer, since=order.customer.since, ship_to=order.ship_to,
        tier=order.tier, priority=order.priority, tags=order.tags, at=order.meta["at"],
        window=order.window, start=order.window.start, blob=order.blob, id=order.id,
        price=order.lines[0].price, by_sku=next(iter((by_sku or {"-": None}).values())),
    )  # fmt: skip
    return Receipt(order, total - (discount or 0), arrived)


def untyped(ctx: Context, when, amount):  # type: ignore[no-untyped-def]  # unannotated on purpose
    """No annotations: the JSON as it is, as before."""
    return [type(when).__name__, type(amount).__name__, when]


def charge(ctx: Context, card: str) -> str:
    raise PaymentDeclined(card, 402)


async def checkout(ctx: Context, card: str) -> str:
    return await ctx.options(retry=Never()).run(charge, card)


def reserve(ctx: Context, sku: str) -> None:
    raise OutOfStock(sku, datetime(2026, 3, 1, 12, 0))


def hidden(ctx: Context, level: int) -> None:
    from tests.sdk import types_hidden  # only the worker imports it

    raise types_hidden.Hidden("the vault is closed", level)


def opaque(ctx: Context) -> object:
    return object()


async def catches(ctx: Context, group: str, card: str) -> dict[str, Any]:
    """A parent workflow (in the caller's process) awaiting a child in the worker."""
    try:
        await ctx.options(target=group).rpc(checkout, card)
    except PaymentDeclined as exc:
        return {"class": type(exc).__qualname__, "card": exc.card, "code": exc.code,
                "notes": getattr(exc, "__notes__", [])}  # fmt: skip
    return {}


async def plans(ctx: Context, group: str, order: Order) -> list[str]:
    """A parent awaiting a typed child in the worker: the child's result is rebuilt here."""
    receipt = await ctx.options(target=group).rpc(book, order, order.placed.date())
    return [type(receipt).__name__, type(receipt.total).__name__, type(receipt.order).__name__]


def register(sustain: Sustain) -> None:
    for fn in (book, untyped, checkout, reserve, hidden, opaque, catches, plans):
        sustain.register(fn, retry=Never())
