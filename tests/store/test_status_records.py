"""The status records of the ``Tx`` (protocol/status.py), over every store: insert, replace,
look up many ids at once (odd ids included), survive a rolled back operation untouched, and
go with ``reset``."""

from __future__ import annotations

import pytest

from sustain.store.base import Store
from sustain.store.tx import Tx
from tests.store.test_contract import ODD_IDS


def test_put_replaces_and_get_answers_only_the_ids_that_have_one(store: Store) -> None:
    def write(tx: Tx) -> None:
        for n, id in enumerate(ODD_IDS):
            tx.put_status(id, f'{{"attempts": {n}}}')
        tx.put_status("a", '{"attempts": 99}')  # a write replaces the record

    store.run(write)
    wanted = [*ODD_IDS, "absent", "also-absent"]
    got = store.run(lambda tx: tx.get_statuses(wanted))
    assert set(got) == set(ODD_IDS)
    assert got["a"] == '{"attempts": 99}'
    assert got["😀"] == f'{{"attempts": {ODD_IDS.index("😀")}}}'
    assert store.run(lambda tx: tx.get_statuses(["absent"])) == {}


def test_a_failed_operation_leaves_no_record(store: Store) -> None:
    store.run(lambda tx: tx.put_status("kept", '{"attempts": 1}'))

    def fails(tx: Tx) -> None:
        tx.put_status("kept", '{"attempts": 2}')
        tx.put_status("new", '{"attempts": 1}')
        raise RuntimeError("the operation fails after its writes")

    with pytest.raises(RuntimeError):
        store.run(fails)
    assert store.run(lambda tx: tx.get_statuses(["kept", "new"])) == {"kept": '{"attempts": 1}'}


def test_reset_deletes_the_records(store: Store) -> None:
    store.run(lambda tx: tx.put_status("gone", '{"attempts": 1}'))
    store.run(lambda tx: tx.reset())
    assert store.run(lambda tx: tx.get_statuses(["gone"])) == {}
