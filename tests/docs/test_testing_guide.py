"""The "Testing your workflows" page's test files pass as written.

Every ```python block of docs/testing.md whose first line is ``# test_NAME.py`` is a test
file of a user's project; they run together in a child pytest (``pytester``), where the
``sustain_env`` fixture comes from the plugin's entry point, and every test must pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
BLOCK = re.compile(r"```python\n# (test_\w+)\.py\n(.*?)```", re.S)


@pytest.mark.slow
def test_the_pages_test_files_pass(pytester: pytest.Pytester) -> None:
    files = {m.group(1): m.group(2) for m in BLOCK.finditer(PAGE.read_text())}
    assert len(files) >= 4
    pytester.makepyfile(**files)
    tests = sum(len(re.findall(r"^def test_", code, re.M)) for code in files.values())
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=tests)
