"""Issue 16, items 3 and 4, across processes: a real server, a real ``sustain worker``
process (tests/sdk/types_worker.py) and the test process as the caller.

- An exception raised in the worker reaches the caller, and a parent workflow running in the
  caller, as the same class, with its message, its attributes (annotated ones as their
  type) and the worker's traceback as a note; a class the caller has not imported arrives
  as ``ApplicationError`` whose ``type`` names it.
- Arguments and results cross as JSON and arrive as the functions' annotations ask;
  unannotated parameters get the JSON as before; an argument that cannot be encoded fails
  the call in the caller, naming the function, the parameter and the type, before anything
  is stored; a result that cannot be encoded fails the call naming the function.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest

from sustain import ApplicationError, SerializationError, ServerError, Sustain
from tests.sdk import types_app
from tests.sdk.conftest import unique
from tests.sdk.types_app import (
    Address,
    Customer,
    Line,
    Meta,
    Order,
    OutOfStock,
    PaymentDeclined,
    Priority,
    Receipt,
    Span,
    Tier,
)
from tests.sdk.worker_process import serving
from tests.servers import ServerProcess

WAIT = 120.0  # a bound on each wait, not an assertion on speed


@pytest.fixture
def worker(sdk_server: ServerProcess, tmp_path: Path) -> Iterator[str]:
    with serving(sdk_server, tmp_path, "tests.sdk.types_worker:sustain") as group:
        yield group


@pytest.fixture
def caller(sdk_server: ServerProcess) -> Iterator[Sustain]:
    sustain = Sustain(url=sdk_server.url, group=unique("caller"))
    types_app.register(sustain)  # the caller knows the annotations (and runs `catches`)
    yield sustain
    sustain.stop()


def an_order() -> Order:
    return Order(
        id=UUID("12345678-1234-5678-1234-567812345678"),
        placed=datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC),
        lines=[Line("ab-1", 2, Decimal("9.99")), Line("cd-2", 1, Decimal("0.02"))],
        customer=Customer(name="Ada", since=date(2020, 1, 31)),
        ship_to=Address(city="Lyon", zip="69001"),
        tier=Tier.GOLD,
        priority=Priority.HIGH,
        tags={"gift", "fragile"},
        meta=Meta(source="web", at=datetime(2026, 2, 3, 4, 0, tzinfo=UTC)),
        window=Span(time(9, 30), timedelta(hours=2)),
        blob=b"\x00\xffraw",
        note=None,
    )


# -- errors keep their type -----------------------------------------------------------------
def test_an_error_reaches_the_caller_as_its_class(caller: Sustain, worker: str) -> None:
    handle = caller.options(target=worker).rpc(unique("checkout"), types_app.checkout, "4242")
    with pytest.raises(PaymentDeclined) as raised:
        handle.result(timeout=WAIT)
    error = raised.value
    assert type(error) is PaymentDeclined
    assert (str(error), error.args) == ("card 4242 declined", ("card 4242 declined",))
    assert (error.card, error.code) == ("4242", 402)  # set by __init__ in the worker
    notes = "\n".join(error.__notes__)
    assert f"Raised in promise {handle.id!r}" in notes  # checkout, and the step inside it
    assert f"Raised in promise '{handle.id}:1'" in notes
    assert "types_app.py" in notes and "in charge" in notes and "in checkout" in notes
    assert "sustain/sdk/" not in notes  # the SDK's own frames are left out


def test_a_parent_workflow_in_another_process_catches_the_class(
    caller: Sustain, worker: str
) -> None:
    got = caller.run(unique("catches"), types_app.catches, worker, "0000").result(timeout=WAIT)
    assert {k: got[k] for k in ("class", "card", "code")} == {
        "class": "PaymentDeclined", "card": "0000", "code": 402,
    }  # fmt: skip
    assert any("in charge" in note for note in got["notes"])


def test_annotated_attributes_come_back_as_their_type(caller: Sustain, worker: str) -> None:
    handle = caller.options(target=worker).rpc(unique("reserve"), types_app.reserve, "ab-1")
    with pytest.raises(OutOfStock) as raised:
        handle.result(timeout=WAIT)
    assert raised.value.sku == "ab-1"
    assert raised.value.since == datetime(2026, 3, 1, 12, 0)  # a datetime, not its string


def test_a_class_the_caller_never_imported_is_an_application_error(
    caller: Sustain, worker: str
) -> None:
    assert "tests.sdk.types_hidden" not in sys.modules  # the premise: only the worker has it
    handle = caller.options(target=worker).rpc(unique("hidden"), types_app.hidden, 3)
    with pytest.raises(ApplicationError) as raised:
        handle.result(timeout=WAIT)
    error = raised.value
    assert type(error) is ApplicationError
    assert (error.type, error.name) == ("tests.sdk.types_hidden.Hidden", "Hidden")
    assert (error.message, error.attributes, error.id) == ("the vault is closed", {"level": 3},
                                                           handle.id)  # fmt: skip
    assert "raise types_hidden.Hidden(" in "\n".join(error.__notes__)
    assert "tests.sdk.types_hidden" not in sys.modules  # reading it imported nothing


# -- data keeps its type --------------------------------------------------------------------
def test_arguments_and_results_arrive_as_annotated(caller: Sustain, worker: str) -> None:
    order = an_order()
    handle = caller.options(target=worker).rpc(
        unique("book"), types_app.book, order, date(2026, 2, 3), Decimal("1.00"),
        codes=frozenset({"SPRING"}), by_sku={"ab-1": order.lines[0]},
    )  # fmt: skip
    receipt = handle.result(timeout=WAIT)
    assert type(receipt) is Receipt and receipt.order == order
    assert receipt.total == Decimal("19.00")
    assert receipt.arrived == {  # what each argument was inside the worker's function
        "order": "Order", "day": "date", "discount": "Decimal", "codes": "frozenset",
        "placed": "datetime", "customer": "Customer", "since": "date", "ship_to": "Address",
        "tier": "Tier", "priority": "Priority", "tags": "set", "at": "datetime",
        "window": "Span", "start": "time", "blob": "bytes", "id": "UUID", "price": "Decimal",
        "by_sku": "Line",
    }  # fmt: skip
    # and on the wire, JSON that any SDK reads
    stored = caller.promises.get(handle.id)
    assert stored["state"] == "resolved"


def test_a_child_result_is_rebuilt_in_its_parent(caller: Sustain, worker: str) -> None:
    got = caller.run(unique("plans"), types_app.plans, worker, an_order()).result(timeout=WAIT)
    assert got == ["Receipt", "Decimal", "Order"]


def test_unannotated_parameters_keep_the_json(caller: Sustain, worker: str) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5)
    handle = caller.options(target=worker).rpc(unique("untyped"), "untyped", when, Decimal("2"))
    assert handle.result(timeout=WAIT) == ["str", "str", "2026-01-02T03:04:05"]


def test_a_value_that_cannot_be_encoded_fails_the_call(caller: Sustain, worker: str) -> None:
    id = unique("opaque-arg")
    with pytest.raises(SerializationError) as refused:
        caller.options(target=worker).rpc(id, types_app.book, an_order(), object())
    error = refused.value
    assert (error.function, error.parameter, error.type) == ("book", "day", "object")
    assert str(error).startswith("book: argument 'day' (object) cannot be encoded as JSON")
    with pytest.raises(ServerError) as missing:  # refused before anything was stored
        caller.promises.get(id)
    assert missing.value.status == 404

    handle = caller.options(target=worker).rpc(unique("opaque-result"), types_app.opaque)
    with pytest.raises(SerializationError) as returned:
        handle.result(timeout=WAIT)
    assert (returned.value.function, returned.value.parameter) == ("opaque", "return")
    assert returned.value.type == "object"
    assert str(returned.value).startswith("the value opaque returned (object) cannot be encoded")
