"""The peers' installations: pinned, each in its own place under ``.cache/bench-peers/``.

* DBOS: a virtual environment with ``dbos==3.4.*`` and ``pysqlite3-binary`` (DBOS needs a
  newer SQLite than Debian 12's 3.40; ``dbos_app.py`` aliases ``sqlite3`` to it).
* Restate: a virtual environment with ``restate-sdk`` and ``hypercorn`` (the deployment), and
  the ``restate-server`` binary of the npm package ``@restatedev/restate-server``, installed
  with ``npm install --prefix``; the binary itself ships in the platform package
  ``@restatedev/restate-server-linux-x64`` (an optional dependency).

Each installation writes a stamp (``bench-peers.json``: what was asked for and the versions
that were installed) once it succeeded; a later run whose pins match the stamp installs
nothing.  A failed installation raises ``Unavailable`` with a one-line reason, so the runner
reports that peer as unavailable and still measures the others.  The virtual environments
are made from this interpreter's base Python (3.11), away from the project's ``.venv``.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import REPO

CACHE = REPO / ".cache" / "bench-peers"
STAMP = "bench-peers.json"

DBOS_PINS = ("dbos==3.4.*", "pysqlite3-binary==0.5.4.post2")
RESTATE_SDK_PINS = ("restate-sdk==1.3.0", "hypercorn==0.18.0")
RESTATE_SERVER_PIN = "@restatedev/restate-server@1.7.12"

INSTALL_TIMEOUT = 900.0


class Unavailable(Exception):
    """A peer that cannot be installed or started here; ``str()`` is the one-line reason."""


@dataclass(frozen=True)
class PythonEnv:
    python: Path
    versions: dict[str, str]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    real = [line for line in lines if not line.startswith("WARNING")]
    return (real or lines or ["(no output)"])[-1][:300]


def _read_stamp(path: Path, pins: object) -> dict[str, str] | None:
    try:
        stamp = json.loads((path / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if stamp.get("pins") != pins:
        return None
    versions: dict[str, str] = stamp["versions"]
    return versions


def _write_stamp(path: Path, pins: object, versions: dict[str, str]) -> None:
    (path / STAMP).write_text(json.dumps({"pins": pins, "versions": versions}, indent=1))


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{what} failed: {exc}") from exc
    if done.returncode != 0:
        raise Unavailable(f"{what} failed: {_last_line(done.stderr or done.stdout)}")
    return done.stdout


def python_env(name: str, pins: tuple[str, ...], distributions: tuple[str, ...]) -> PythonEnv:
    """The virtual environment ``.cache/bench-peers/<name>`` with ``pins`` installed (once)."""
    path = CACHE / name
    python = path / "bin" / "python"
    versions = _read_stamp(path, list(pins))
    if versions is not None and python.exists():
        return PythonEnv(python, versions)
    shutil.rmtree(path, ignore_errors=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    print(f"# installing {' '.join(pins)} into {path} (once)", file=sys.stderr, flush=True)
    _run([sys.executable, "-m", "venv", str(path)], f"python -m venv {name}")
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, *pins], f"pip install {' '.join(pins)}")
    probe = (
        "import importlib.metadata as m, json, sys; "
        "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
    )
    versions = json.loads(_run([str(python), "-c", probe, *distributions], "version probe"))
    _write_stamp(path, list(pins), versions)
    return PythonEnv(python, versions)


def dbos_env() -> PythonEnv:
    return python_env("dbos", DBOS_PINS, ("dbos", "pysqlite3-binary", "SQLAlchemy", "psycopg"))


def restate_sdk_env() -> PythonEnv:
    return python_env("restate-sdk", RESTATE_SDK_PINS, ("restate-sdk", "hypercorn"))


def _platform_package() -> str:
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    return f"restate-server-{sys.platform}-{arch}"


def restate_server() -> tuple[Path, str]:
    """The ``restate-server`` binary (installed once) and its version."""
    path = CACHE / "restate-server"
    binary = path / "node_modules" / "@restatedev" / _platform_package() / "bin" / "restate-server"
    versions = _read_stamp(path, RESTATE_SERVER_PIN)
    if versions is not None and binary.exists():
        return binary, versions["restate-server"]
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found (needed to install @restatedev/restate-server)")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    print(f"# installing {RESTATE_SERVER_PIN} into {path} (once)", file=sys.stderr, flush=True)
    # --ignore-scripts: the only install script is a download-statistics ping; the binary
    # comes in the platform package, an optional dependency.
    _run([npm, "install", "--prefix", str(path), "--no-audit", "--no-fund", "--no-save",
          "--ignore-scripts", RESTATE_SERVER_PIN], f"npm install {RESTATE_SERVER_PIN}")  # fmt: skip
    if not binary.exists():
        raise Unavailable(f"no {_platform_package()} binary in {RESTATE_SERVER_PIN}")
    version = _run([str(binary), "--version"], "restate-server --version").split()[-1]
    _write_stamp(path, RESTATE_SERVER_PIN, {"restate-server": version})
    return binary, version


# -- resonate-pg: Resonate's own PostgreSQL implementation -----------------------------------
RESONATE_PG_PINS = ("resonate-pg==0.8.0", "resonate-sdk==0.8.1")
RESONATE_PG_SCHEMA_ENV = "SUSTAIN_BENCH_RESONATE_PG_SQL"


def _python312() -> Path:
    """A Python 3.12 interpreter (resonate-pg and resonate-sdk 0.8 require >= 3.12): pyenv's
    newest 3.12, else ``python3.12`` on PATH (pyenv's shim there fails unless selected)."""
    root = Path.home() / ".pyenv" / "versions"
    found = sorted(root.glob("3.12*/bin/python3.12")) if root.is_dir() else []
    if found:
        return found[-1]
    on_path = shutil.which("python3.12")
    if on_path is None:
        raise Unavailable("no Python 3.12 (resonate-pg 0.8.0 requires >= 3.12)")
    return Path(on_path)


def resonate_pg_env() -> PythonEnv:
    """The connector's venv ``.cache/bench-peers/resonate-pg`` (Python 3.12, from PyPI).

    This is only the client half.  resonate-pg has no server process: the protocol is a
    set of stored procedures, the SQL file ``resonate.sql``, applied once to the database.
    That file is not in the PyPI package (its README links to the GitHub repository for it),
    nor in any npm or Debian package, nor on this machine, and this machine reaches no other
    host.  (The package's README asks for PostgreSQL 16+, but the project's SDK-WIRE spec
    records resonate.sql loaded and run on this kind of machine's PostgreSQL 15: the version
    is not what blocks.)  So without a schema file given in ``SUSTAIN_BENCH_RESONATE_PG_SQL``
    the peer is unavailable, with that reason.
    """
    path = CACHE / "resonate-pg"
    python = path / "bin" / "python"
    versions = _read_stamp(path, list(RESONATE_PG_PINS))
    if versions is None or not python.exists():
        shutil.rmtree(path, ignore_errors=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        print(f"# installing {' '.join(RESONATE_PG_PINS)} into {path} (once)",
              file=sys.stderr, flush=True)  # fmt: skip
        _run([str(_python312()), "-m", "venv", str(path)], "python3.12 -m venv resonate-pg")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        _run([*pip, *RESONATE_PG_PINS], f"pip install {' '.join(RESONATE_PG_PINS)}")
        probe = (
            "import importlib.metadata as m, json, sys; "
            "print(json.dumps({d: m.version(d) for d in sys.argv[1:]}))"
        )
        versions = json.loads(_run([str(python), "-c", probe, "resonate-pg", "resonate-sdk"],
                                   "version probe"))  # fmt: skip
        _write_stamp(path, list(RESONATE_PG_PINS), versions)
    return PythonEnv(python, versions)
