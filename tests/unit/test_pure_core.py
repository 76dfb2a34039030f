"""The pure core stays pure: protocol/ and engine/ import no I/O, clock or randomness.

Time, randomness and storage come in as arguments (DESIGN.md, "Layers"); this is what lets one
engine serve every store and lets tests drive it through years of timers in milliseconds.
A ruff rule cannot ban imports per package, so the rule is checked here on the source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "sustain"

BANNED = {
    "asyncio", "sqlite3", "psycopg", "httpx", "aiohttp", "uvicorn", "socket", "time",
    "random", "os", "threading", "subprocess", "secrets", "uuid", "requests", "urllib.request",
}
# Layers point down only: the core may use the store's Tx seam, never a store or the server.
BANNED_INTERNAL = ("sustain.server", "sustain.sdk", "sustain.cli", "sustain.store.sqlite",
                   "sustain.store.memory", "sustain.store.postgres")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def _core_files() -> list[Path]:
    return sorted([*(SRC / "protocol").rglob("*.py"), *(SRC / "engine").rglob("*.py")])


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(SRC)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    bad = [
        name
        for name in _imports(path)
        if name in BANNED
        or name.split(".")[0] in BANNED - {"urllib.request"}
        or name.startswith(BANNED_INTERNAL)
    ]
    assert bad == [], f"{path.relative_to(SRC)} imports {bad}"


def test_the_core_is_checked() -> None:
    names = {p.name for p in _core_files()}
    assert "records.py" in names
