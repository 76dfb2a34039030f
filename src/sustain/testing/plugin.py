"""The pytest plugin of ``sustain.testing``, registered through the ``pytest11`` entry point
(pyproject.toml), so installing Sustain is enough to get the ``sustain_env`` fixture.

pytest imports this module in every run of every project where Sustain is installed: it
imports nothing of Sustain until a test asks for the fixture.  ``@pytest.mark.sustain_env(
auto_skip=False, start_ms=...)`` sets the environment's arguments for one test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sustain.testing.env import SustainEnv


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sustain_env(auto_skip=True, start_ms=None): arguments of the sustain_env"
    )


@pytest.fixture
def sustain_env(request: pytest.FixtureRequest) -> Iterator[SustainEnv]:
    """An embedded Sustain on an in-memory store and a virtual clock, stopped after the
    test (sustain.testing.SustainEnv)."""
    from sustain.testing.env import SustainEnv  # noqa: PLC0415 - only for tests that use it

    marker = request.node.get_closest_marker("sustain_env")
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    env = SustainEnv(**kwargs)
    try:
        yield env.start()
    finally:
        env.stop()
