"""The official SDKs' environments, built once and cached under ``.cache/interop/``.

* ``py312/``: a virtual environment made with a Python 3.12 interpreter (resonate-sdk 0.8.1
  uses PEP 695 syntax, so it cannot run on the project's 3.11) with ``resonate-sdk==0.8.1``.
* ``node/``: ``tests/interop/ts/package.json`` and its lock installed with ``npm ci``
  (``@resonatehq/sdk`` 0.11.5); the test scripts of ``tests/interop/ts/`` are copied next to
  ``node_modules`` on every session so that ``import "@resonatehq/sdk"`` resolves.

Each environment has a stamp recording what it was built from; a second run whose inputs are
unchanged installs nothing.  An exclusive ``flock`` on ``.cache/interop/.lock`` serialises
concurrent pytest processes (several developers, or xdist workers) building the same cache.
A failed build raises ``EnvironmentError`` with the command's output: the interop tests fail
with that message rather than skip (CI has network access; a silent skip would hide a broken
suite).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CACHE = ROOT / ".cache" / "interop"
TS_SOURCES = HERE / "ts"
PY_REQUIREMENT = "resonate-sdk==0.8.1"
TS_PACKAGE = "@resonatehq/sdk"
TS_VERSION = "0.11.5"


class InteropEnvironmentError(RuntimeError):
    """The official SDKs' environment could not be built (see the message)."""


@dataclass(frozen=True)
class Environment:
    python: Path  # the Python 3.12 interpreter of the venv holding resonate-sdk
    node_dir: Path  # node_modules' parent, where the TS scripts run from


def _run(argv: list[str], cwd: Path | None = None, timeout: float = 600) -> None:
    try:
        done = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InteropEnvironmentError(f"{' '.join(argv)} failed: {exc}") from None
    if done.returncode != 0:
        raise InteropEnvironmentError(
            f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-4000:]}\n"
            f"{done.stderr[-4000:]}"
        )


def _is_312(candidate: str) -> bool:
    try:
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and done.stdout.strip() == "True"


def _pyenv_root() -> str | None:
    if os.environ.get("PYENV_ROOT"):
        return os.environ["PYENV_ROOT"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    home = Path.home() / ".pyenv"
    return str(home) if home.is_dir() else None


def find_python312() -> str:
    """``SUSTAIN_PYTHON312``, else pyenv's newest 3.12, else ``python3.12`` on PATH.

    pyenv's ``python3.12`` shim on PATH fails unless a 3.12 is selected, so pyenv's real
    binaries are preferred to it; every candidate is checked by running it.
    """
    candidates: list[str] = []
    if os.environ.get("SUSTAIN_PYTHON312"):
        candidates.append(os.environ["SUSTAIN_PYTHON312"])
    root = _pyenv_root()
    if root:
        found = glob.glob(os.path.join(root, "versions", "3.12*", "bin", "python3.12"))
        candidates += sorted(found, reverse=True)
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        if _is_312(candidate):
            return candidate
    raise InteropEnvironmentError(
        "no Python 3.12 found (tried SUSTAIN_PYTHON312, pyenv's versions/3.12*, python3.12 on "
        f"PATH: {candidates or 'none'}); resonate-sdk 0.8.1 needs 3.12. Install one (e.g. "
        "`pyenv install 3.12`) or point SUSTAIN_PYTHON312 at it."
    )


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
        h.update(b"\0")
    return h.hexdigest()


def _python_env() -> Path:
    venv = CACHE / "py312"
    python = venv / "bin" / "python"
    stamp = venv / ".sustain-stamp"
    # The stamp names the requirement; re-resolving the base interpreter on every run would
    # cost a subprocess per candidate, so a stamped venv that still runs 3.12 is trusted.
    stamped = stamp.exists() and stamp.read_text().startswith(PY_REQUIREMENT + "\n")
    if stamped and python.exists() and _is_312(str(python)):
        return python
    base = find_python312()
    shutil.rmtree(venv, ignore_errors=True)
    _run([base, "-m", "venv", str(venv)])
    _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          PY_REQUIREMENT])  # fmt: skip
    stamp.write_text(f"{PY_REQUIREMENT}\n{base}\n")
    return python


def _node_env() -> Path:
    node_dir = CACHE / "node"
    manifest = (TS_SOURCES / "package.json").read_bytes()
    lock = (TS_SOURCES / "package-lock.json").read_bytes()
    wanted = _digest(manifest, lock)
    stamp = node_dir / ".sustain-stamp"
    installed = node_dir / "node_modules" / TS_PACKAGE / "package.json"
    if not (stamp.exists() and stamp.read_text() == wanted and installed.exists()):
        for tool in ("node", "npm"):
            if shutil.which(tool) is None:
                raise InteropEnvironmentError(f"`{tool}` is not on PATH: the TS SDK needs Node 20+")
        shutil.rmtree(node_dir, ignore_errors=True)
        node_dir.mkdir(parents=True)
        (node_dir / "package.json").write_bytes(manifest)
        (node_dir / "package-lock.json").write_bytes(lock)
        _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=node_dir)
        stamp.write_text(wanted)
    # The scripts change with the tests: refresh them every session (a few small files),
    # atomically and only when changed, so a concurrent session never reads half a file.
    for source in TS_SOURCES.iterdir():
        target = node_dir / source.name
        if source.suffix in (".mjs", ".cjs") and (
            not target.exists() or target.read_bytes() != source.read_bytes()
        ):
            partial = target.with_suffix(target.suffix + ".partial")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
    return node_dir


def build() -> Environment:
    """Both environments, building what is missing or stale (under the cache lock)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return Environment(python=_python_env(), node_dir=_node_env())
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
