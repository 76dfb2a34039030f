"""Embedded use loads no server stack: ``import sustain`` and a workflow run in-process import
none of the packages of the server, postgres, kafka or otel extras (issue 15).

Checked in a fresh interpreter, since this test process has imported everything already; the
modules' own lazy imports are what keeps them out, so this pins them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Top-level import names the embedded mode must not load.
SERVER_STACK = (
    "uvicorn",
    "httptools",
    "uvloop",
    "prometheus_client",
    "jwt",
    "cryptography",
    "psycopg",
    "psycopg_pool",
    "aiokafka",
    "opentelemetry",
)

EMBEDDED_RUN = """
import json, sys
from sustain import Context, Sustain

sustain = Sustain(":memory:")

def double(ctx: Context, x: int) -> int:
    return 2 * x

@sustain.register
def flow(ctx: Context, x: int):
    y = yield ctx.run(double, x)
    yield ctx.sleep(0.01)
    return y + 1

result = sustain.run("imports-1", flow, 20).result(timeout=30)
sustain.stop()
print(json.dumps({"result": result, "modules": sorted({m.split(".")[0] for m in sys.modules}),
                  "sustain": sorted(m for m in sys.modules if m.startswith("sustain."))}))
"""

CLI_HELP = """
import json, sys
from click.testing import CliRunner
from sustain.cli.main import sustain

result = CliRunner().invoke(sustain, ["--help"])
print(json.dumps({"code": result.exit_code, "output": result.output,
                  "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _run(code: str, cwd: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return found


def test_an_embedded_workflow_imports_no_server_stack(tmp_path: Path) -> None:
    found = _run(EMBEDDED_RUN, tmp_path)
    assert found["result"] == 41
    modules = found["modules"]
    assert isinstance(modules, list)
    assert [name for name in SERVER_STACK if name in modules] == []
    sustain_modules = found["sustain"]
    assert isinstance(sustain_modules, list)
    assert [m for m in sustain_modules if m.startswith("sustain.server")] == []
    # the test environment (and the pytest plugin's module) load only when a test asks
    assert [m for m in sustain_modules if m.startswith("sustain.testing")] == []
    assert "sustain.runtime.core" in sustain_modules  # the check is on the real embedded path


def test_the_cli_lists_its_commands_without_the_server_stack(tmp_path: Path) -> None:
    found = _run(CLI_HELP, tmp_path)
    assert found["code"] == 0
    output = found["output"]
    assert isinstance(output, str)
    assert "serve" in output  # listed even though serving needs the server extra
    modules = found["modules"]
    assert isinstance(modules, list)
    assert [name for name in SERVER_STACK if name in modules] == []
