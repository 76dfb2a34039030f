"""Scenario tests: no child process outlives its test, whatever the outcome."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scenarios.processes import Proc


@pytest.fixture(autouse=True)
def _reap_processes() -> Iterator[None]:
    yield
    Proc.reap()
