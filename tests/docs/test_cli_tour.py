"""docs/cli-tour.md is what its commands print: re-recorded against a real server and worker.

``docs/make_cli_tour.py`` runs every command of the page with the installed ``sustain`` and
writes the page; here it writes a copy in a temporary file, which must have the same commands
as the page in the repository, and the same output once the parts that change from run to run
(times, durations, the worker's pid) are masked.  A failure means the page is stale: run
``python docs/make_cli_tour.py`` and commit it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cli-tour.md"
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
DURATION = re.compile(r" \d+(?:\.\d+)?(?:ms|s)$", re.M)
PID = re.compile(r"worker \S+ (?=serving group)")


def masked(text: str) -> str:
    text = TIME.sub("<time>", text)
    text = DURATION.sub(" <duration>", text)
    text = PID.sub("worker <pid> ", text)
    # a record table's columns are as wide as its longest value, which includes the times
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def commands(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("$ ")]


def test_the_tour_is_what_its_commands_print(tmp_path: Path) -> None:
    out = tmp_path / "cli-tour.md"
    done = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_cli_tour.py"), str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    recorded, page = out.read_text(), PAGE.read_text()
    assert commands(recorded) == commands(page)
    assert masked(recorded) == masked(page)


def test_the_tour_shows_what_issue_19_asks_for() -> None:
    page = PAGE.read_text()
    for command in ("invoke factorial-5", "--wait", "tree factorial-5", "schedules create",
                    "schedules next", "promises resolve"):  # fmt: skip
        assert command in page
    assert "└── 🟢 factorial-4 (rpc factorial)" in page
    assert "approve-o7 (promise) pending" in page
