"""The release artefacts work outside this checkout: the sdist builds a wheel, the wheel
installs into a clean virtual environment, the README's quickstart runs there on the base
install, ``sustain serve`` in a base install names the extra it needs in one line, and with
``[server]`` it serves ``/health`` (issue 14, item 3).

Versions come from requirements/test.txt (as constraints), so the clean environment holds the
locked releases; they are taken from uv's cache when it has them (``--offline``), else from
the index, still pinned.  Every process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "test.txt"


def _uv() -> str:
    local = ROOT / ".cache" / "uv" / "bin" / "uv"  # installed by the Makefile
    found = str(local) if local.exists() else shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (make installs it into .cache/uv)")
    return found


def _env() -> dict[str, str]:
    # Nothing of this checkout may leak into the clean environment.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SUSTAIN_", "PYTHON", "VIRTUAL_ENV"))
    }


def _install(uv: str, venv: Path, requirement: str) -> None:
    argv = [
        uv,
        "pip",
        "install",
        "-q",
        "--python",
        str(venv / "bin" / "python"),
        "-c",
        str(LOCK),
        requirement,
    ]
    done = subprocess.run(
        [*argv, "--offline"], check=False, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0 and "network was disabled" in done.stderr:
        # The cache lacks a wheel or its metadata: fetch it, at the same locked version.
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def quickstart() -> str:
    """The README's first Python block: the quickstart a new user copies."""
    found = re.search(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert found is not None, "README.md has no python block"
    return found.group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    # The sdist first, then the wheel from it (uv build's default), with the locked
    # hatchling of this environment: a wheel built this way proves the sdist complete.
    done = subprocess.run(
        [
            _uv(),
            "build",
            "-q",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            str(out),
            str(ROOT),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [built] = out.glob("sustain-*.whl")
    assert len(list(out.glob("sustain-*.tar.gz"))) == 1
    return built


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Iterator[Path]:
    """A clean virtual environment with the wheel's base install (no extras)."""
    path = tmp_path_factory.mktemp("venv") / "v"
    uv = _uv()
    subprocess.run(
        [uv, "venv", "-q", "--python", sys.executable, str(path)], check=True, timeout=60
    )
    _install(uv, path, str(wheel))
    yield path


def test_the_readme_quickstart_runs_on_the_base_install(venv: Path, tmp_path: Path) -> None:
    script = tmp_path / "quickstart.py"
    script.write_text(quickstart())
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(script)],
        cwd=tmp_path,
        env=_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "receipt-o1-42" in done.stdout
    # The installed package ran, not this checkout's sources.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sustain; print(sustain.__file__)"],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.startswith(str(venv))


def test_the_wheel_ships_its_types_and_license(venv: Path) -> None:
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "sustain" / "py.typed").exists()
    assert (site / "sustain" / "store" / "schema" / "0001_init.sql").exists()
    [info] = site.glob("sustain-*.dist-info")
    metadata = (info / "METADATA").read_text()
    assert "License-Expression: Apache-2.0" in metadata
    assert "Provides-Extra: server" in metadata
    assert "durable promise" in metadata  # the long description is the README
    assert (info / "licenses" / "LICENSE").exists()


# Each command that needs an extra the base install lacks, and the one line it must answer.
MISSING_EXTRAS = {
    "serve": (
        ["serve", "--bind", "127.0.0.1", "--port", "{port}", "--sqlite-path", "s.db"],
        "Error: 'sustain serve' needs uvicorn: pip install 'sustain[server]'",
    ),
    "migrate": (
        ["migrate", "--postgres", "postgresql://x@127.0.0.1:1/x"],
        "Error: 'sustain migrate --postgres' needs psycopg: pip install 'sustain[postgres]'",
    ),
    "worker-metrics": (
        ["worker", "app:sustain", "--metrics-port", "{port}"],
        "Error: serving worker metrics needs prometheus_client: pip install 'sustain[metrics]'",
    ),
}


@pytest.mark.parametrize("case", sorted(MISSING_EXTRAS))
def test_a_command_without_its_extra_names_it_in_one_line(
    venv: Path, tmp_path: Path, case: str
) -> None:
    args, message = MISSING_EXTRAS[case]
    (tmp_path / "app.py").write_text("from sustain import Sustain\nsustain = Sustain(':memory:')\n")
    port = str(free_port())
    done = subprocess.run(
        [str(venv / "bin" / "sustain"), *(arg.replace("{port}", port) for arg in args)],
        cwd=tmp_path,
        env=_env(),
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [message]


def test_the_server_extra_serves_health(wheel: Path, tmp_path: Path) -> None:
    # Its own environment: the base one above must stay without the extra.
    server_venv = tmp_path / "v"
    uv = _uv()
    subprocess.run(
        [uv, "venv", "-q", "--python", sys.executable, str(server_venv)], check=True, timeout=60
    )
    _install(uv, server_venv, f"{wheel}[server]")
    server = start_server(tmp_path, launcher=[str(server_venv / "bin" / "sustain")])
    try:
        status = httpx.get(f"{server.url}/health", timeout=10).status_code
    finally:
        code = server.stop()
    assert status == 200
    assert code == 0, server.output()
