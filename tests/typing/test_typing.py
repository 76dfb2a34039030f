"""The SDK's types, checked by mypy (strict, the project's configuration) and by running.

``typed_api.py`` must type-check clean (its ``assert_type`` lines are what a user's checker
infers) and run with the values it claims; so must the guide's ``sdk_types.py`` (docs/sdk.md,
"Types": tests/docs runs it).  ``wrong_calls.py`` must get exactly the errors its ``# E:``
comments name, on those lines, and no other: a wrong argument, a missing one, a function
without ``ctx``, a result used as another type, a forgotten ``await``.  One mypy run checks
the three (its cache, shared with ``make types``, keeps it to seconds once warm).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GOOD = HERE / "typed_api.py"
BAD = HERE / "wrong_calls.py"
GUIDE = ROOT / "docs" / "sdk.md"
GUIDE_PROGRAM = "sdk_types.py"

ERROR = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$")
EXPECTED = re.compile(r"#\s*E:\s*(?P<codes>[a-z-]+(?:\s*,\s*[a-z-]+)*)\s*$")


def guide_program() -> str:
    block = re.search(rf"```python\n(# {GUIDE_PROGRAM}\n.*?)```", GUIDE.read_text(), re.S)
    assert block is not None, f"docs/sdk.md has no {GUIDE_PROGRAM} block"
    return block.group(1)


@cache
def mypy_errors() -> tuple[tuple[str, int, str], ...]:
    """(file name, line, error code) of every error mypy reports on the three modules."""
    with tempfile.TemporaryDirectory() as tmp:
        program = Path(tmp) / GUIDE_PROGRAM
        program.write_text(guide_program())
        done = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", "pyproject.toml",
             "--no-error-summary", "--show-error-codes", str(GOOD), str(BAD), str(program)],
            cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode in (0, 1), done.stdout + done.stderr  # 2: mypy itself failed
    found = []
    for line in done.stdout.splitlines():
        match = ERROR.match(line)
        if match is not None:
            found.append((Path(match["path"]).name, int(match["line"]), match["code"]))
    return tuple(found)


def expected_errors() -> set[tuple[int, str]]:
    wanted = set()
    for number, line in enumerate(BAD.read_text().splitlines(), start=1):
        match = EXPECTED.search(line)
        if match is not None:
            wanted |= {(number, code.strip()) for code in match["codes"].split(",")}
    return wanted


def test_what_a_checker_infers_type_checks_clean() -> None:
    assert [e for e in mypy_errors() if e[0] == GOOD.name] == []


def test_the_guides_types_example_type_checks_clean() -> None:
    assert [e for e in mypy_errors() if e[0] == GUIDE_PROGRAM] == []


def test_wrong_calls_get_exactly_the_expected_errors() -> None:
    wanted = expected_errors()
    assert len(wanted) >= 15  # the marker parsing itself cannot silently find nothing
    got = {(line, code) for name, line, code in mypy_errors() if name == BAD.name}
    assert sorted(got - wanted) == [], "unexpected errors"
    assert sorted(wanted - got) == [], "wrong calls that mypy accepted"


def test_the_inferred_types_are_the_values_at_run_time() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.typing.typed_api"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
