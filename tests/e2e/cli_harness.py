"""Running the ``sustain`` executable against a real ``sustain dev`` process, for the CLI tests.

``start(tmp, *flags)`` launches the installed ``sustain dev`` on a free 127.0.0.1 port
(metrics off) through the shared harness (tests/servers.py); ``sustain(*args)`` runs one CLI
command in a subprocess, as a user would; ``ok`` / ``ok_json`` / ``fails`` add the checks
every test makes (exit code, one ``Error:`` line on stderr, nothing else).  ``rpc`` does
set-up straight over HTTP, so only what a test is about goes through the CLI.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import ServerProcess, start_server

SUSTAIN = Path(sys.executable).parent / "sustain"
FAR = 2**53  # a timeoutAt that never passes


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUSTAIN_")}
    env["COLUMNS"] = "200"  # rich wraps narrow tables; keep ids and tags on one line
    env.update(extra)
    return env


Server = ServerProcess


def start(tmp: Path, *flags: str) -> Server:
    """The installed ``sustain dev`` on a free port, as a user would start it."""
    return start_server(tmp, *flags, command="dev", launcher=[str(SUSTAIN)])


def stop(server: Server) -> None:
    server.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def sustain(*args: str, server: Server | None = None, **env: str) -> Result:
    extra = dict(env)
    if server is not None:
        extra.setdefault("SUSTAIN_SERVER", server.url)
    proc = subprocess.run(
        [str(SUSTAIN), *args],
        check=False,
        capture_output=True,
        text=True,
        env=clean_env(**extra),
        timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(*args: str, server: Server) -> Result:
    result = sustain(*args, server=server)
    assert result.code == 0, result
    assert result.err == ""
    return result


def ok_json(*args: str, server: Server) -> Any:
    return ok("--json", *args, server=server).json()


def fails(*args: str, code: int = 1, server: Server | None = None, **env: str) -> str:
    """Run a failing command; answer its one error line (and check there is only that)."""
    result = sustain(*args, server=server, **env)
    assert result.code == code, result
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.err
    return lines[0]


def rpc(server: Server, kind: str, data: dict[str, Any]) -> Any:
    """Set-up straight over HTTP: only what a test is about goes through the CLI."""
    body = {"kind": kind, "head": {"corrId": uid("c"), "version": "2026-04-01"}, "data": data}
    response = httpx.post(server.url, json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def uid(prefix: str = "cli") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def encoded(value: object) -> str:
    """base64 of a value's JSON: the wire form of ``data`` (SDK-WIRE §1.3)."""
    return base64.b64encode(json.dumps(value).encode()).decode()


def decoded(value: dict[str, Any]) -> str:
    return base64.b64decode(value["data"]).decode()


def serving(factory: pytest.TempPathFactory, *flags: str) -> Iterator[Server]:
    """Body of a module-scoped server fixture: start, yield, stop."""
    server = start(factory.mktemp("cli"), *flags)
    try:
        yield server
    finally:
        stop(server)
