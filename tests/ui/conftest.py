"""A real headless Chromium (Debian's ``chromium``) driven by Playwright, and a real
``sustain serve`` that has run the workflows of ``workflows.py``.

Chromium is installed by the session fixture when missing (``apt-get install -y chromium``;
Playwright's own browser download is never used: ``executable_path`` points at the system
binary).  Screenshots go to ``.cache/ui-screenshots/`` (git-ignored), one per page visited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / ".cache" / "ui-screenshots"


def _install_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if shutil.which("apt-get") is None:
        pytest.fail("chromium is missing and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:  # stale package lists: refresh once and retry
        subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0 and os.path.exists(CHROMIUM), done.stderr[-2000:]


@pytest.fixture(scope="session")
def chromium() -> str:
    _install_chromium()
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running on the main
    # thread while it is started, which would make every later test's blocking SDK calls
    # (``handle.result()``) believe they run in async code.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
