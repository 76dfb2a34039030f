"""The SDK guide's programs run as written.

Every ```python block of docs/sdk.md (and of docs/errors.md and docs/deploying-code.md, its
companion pages) whose first line is ``# NAME.py`` is a complete program in embedded mode
that checks its own results with ``assert``; each runs in a fresh process in a temporary
directory and must exit 0.  The guide's import block must name exactly the public
surface of ``sustain``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sustain

PAGE = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
PAGES = [PAGE, PAGE.with_name("errors.md"), PAGE.with_name("deploying-code.md")]
BLOCK = re.compile(r"```python\n(# (\S+\.py)\n.*?)```", re.S)


def programs() -> dict[str, str]:
    return {m.group(2): m.group(1) for page in PAGES for m in BLOCK.finditer(page.read_text())}


def test_the_guide_imports_the_whole_public_surface() -> None:
    first = re.search(r"```python\n(from sustain import \(.*?\))\n", PAGE.read_text(), re.S)
    assert first is not None
    code = re.sub(r"#.*", "", first.group(1))
    names = set(re.findall(r"\b([A-Z]\w+)\b", code))
    assert names == set(sustain.__all__)


@pytest.mark.parametrize("name", sorted(programs()))
def test_program(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text(programs()[name])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
    done = subprocess.run(
        [sys.executable, name], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
