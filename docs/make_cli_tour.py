"""Record docs/cli-tour.md by running its commands against a real server and worker.

``python docs/make_cli_tour.py [OUT]`` starts ``sustain dev`` on a free port and ``sustain
worker tour_app:sustain`` (docs/tour_app.py), runs every command of ``STEPS`` with the
installed ``sustain`` as a user would, and writes the page with what each printed (stdout
and stderr, as a terminal shows them) and its exit code when it is not 0.  The server's URL
is written as ``http://127.0.0.1:8001``.  Both processes are stopped at the end, even when a
command fails.  tests/docs/test_cli_tour.py re-records the page in a temporary file and
checks that every command still behaves as recorded.
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PAGE_URL = "http://127.0.0.1:8001"


@dataclass(frozen=True)
class Step:
    text: str  # the paragraph before the command
    command: str  # after ``sustain``
    wait_for: str | None = None  # a promise id that must exist before the command runs


STEPS = (
    Step(
        "Invoke a function on the worker group and wait for its result. `factorial(n)` calls "
        "`factorial(n-1)` under the id `factorial-{n-1}`, so each level is its own execution.",
        "invoke factorial-5 -f factorial --arg 5 --target workers --wait",
    ),
    Step(
        "`tree` follows the chain of rpcs across executions and names each node's kind.",
        "tree factorial-5",
    ),
    Step(
        "Start a checkout, which waits for a person to approve it (`ctx.promise()` under the "
        "id `approve-o7`); without `--wait`, `invoke` prints the promise it created.",
        "invoke order-7 -f checkout --arg o7 --target workers",
    ),
    Step(
        "The tree shows the step with its kind, and the promise the execution waits on.",
        "tree order-7",
        wait_for="approve-o7",
    ),
    Step(
        "Approve it with a value written as JSON; the CLI encodes it (`--raw` takes the "
        "wire form instead). `resonate:*` tags are hidden unless `--all-tags`.",
        """promises resolve approve-o7 --value '{"by": "alice"}'""",
    ),
    Step(
        "The same id again is the same execution: `--wait` prints its result.",
        "invoke order-7 -f checkout --arg o7 --target workers --wait",
    ),
    Step(
        "The same id with other arguments still returns the first execution, and says so "
        "(`--strict` makes it an error).",
        "invoke order-7 -f checkout --arg o8 --target workers",
    ),
    Step(
        "Another checkout waits for its approval; `cancel` cancels the execution and every "
        "pending call under it, in any group (the promise `approve-o9` has an id of its own, "
        "a lineage of its own: it is not cancelled with its caller).",
        "invoke order-9 -f checkout --arg o9 --target workers",
    ),
    Step(
        "Whoever awaits `order-9` gets `CanceledError`, and its worker stops it.",
        "cancel order-9",
        wait_for="approve-o9",
    ),
    Step(
        "Cancelling a settled execution changes nothing, and says so.",
        "cancel order-9",
    ),
    Step(
        "A function no worker of the group has: the workers pause the execution (it stays "
        "pending until a deploy brings the function), and `--wait` reports it.",
        "invoke refund-1 -f refund --target workers --wait",
    ),
    Step(
        "Schedule a function: each firing creates `standup.<time in ms>` with a one-day "
        "timeout, unless `--promise-id` / `--promise-timeout` say otherwise.",
        "schedules create standup --cron '0 9 * * 1-5' -f remind --arg team --target workers",
    ),
    Step(
        "The next firings, computed from the cron (UTC).",
        "schedules next standup -n 5",
    ),
    Step(
        "A cron mistake names the field and the reason.",
        "schedules create nightly --cron '0 25 * * *' -f remind",
    ),
)

HEADER = """# CLI tour

A session with the `sustain` command, recorded by `docs/make_cli_tour.py` against a real
`sustain dev` server and one worker (`docs/tour_app.py`); every command on this page really
ran, and `tests/docs/test_cli_tour.py` runs them again. The [CLI reference](cli.md) lists
every command and option.

The commands find the server through `SUSTAIN_URL` (or `-S URL`):

```console
$ export SUSTAIN_URL=http://127.0.0.1:8001
```

The worker serves the functions of `tour_app.py`. Its `Sustain()` is embedded, but `-S` (or
`SUSTAIN_URL`) points any app at the server, and the banner says where it runs:

"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUSTAIN_", "RESONATE_"))}
    env.pop("COLUMNS", None)
    return {**env, "SUSTAIN_URL": url, "PYTHONUNBUFFERED": "1"}


def wait(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"make_cli_tour: timed out waiting for {what}")
        time.sleep(0.1)


def run(command: str, env: dict[str, str], url: str) -> tuple[str, int]:
    done = subprocess.run(
        [str(BIN / "sustain"), *shlex.split(command)],
        capture_output=True,
        text=True,
        env=env,
        cwd=DOCS,
        timeout=120,
        check=False,
    )
    shown = (done.stdout + done.stderr).replace(url, PAGE_URL)
    # rich pads table cells to the column width: trailing blanks mean nothing on the page
    return "\n".join(line.rstrip() for line in shown.splitlines()).rstrip(), done.returncode


def exists(id: str, env: dict[str, str]) -> bool:
    done = subprocess.run([str(BIN / "sustain"), "promises", "get", id], capture_output=True,
                          env=env, timeout=60, check=False)  # fmt: skip
    return done.returncode == 0


def console(command: str, shown: str, code: int) -> str:
    exit_note = f"\n[exit {code}]" if code else ""
    body = f"{shown}{exit_note}".rstrip()
    return (
        f"```console\n$ sustain {command}\n{body}\n```\n"
        if body
        else (f"```console\n$ sustain {command}\n```\n")
    )


def record(tmp: Path) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = clean_env(url)
    with (tmp / "server.log").open("wb") as server_log:
        server = subprocess.Popen(
            [str(BIN / "sustain"), "dev", "--bind", "127.0.0.1", "--port", str(port)],
            stdout=server_log, stderr=subprocess.STDOUT, env=env, cwd=tmp,
        )  # fmt: skip
    worker_log = tmp / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        wait(lambda: run("promises search --limit 1", env, url)[1] == 0, "the server")
        with worker_log.open("wb") as sink:
            worker = subprocess.Popen(
                [str(BIN / "sustain"), "-S", url, "worker", "tour_app:sustain",
                 "--group", "workers"],
                stdout=sink, stderr=subprocess.STDOUT, cwd=DOCS,
                # its per-host pid slot (cli/worker.py) is locked here, not in $HOME
                env={**env, "SUSTAIN_WORKER_STATE_DIR": str(tmp / "state")},
            )  # fmt: skip
        wait(lambda: "serving group" in worker_log.read_text(), "the worker")
        banner = next(
            line for line in worker_log.read_text().splitlines() if "serving group" in line
        )
        banner = banner.replace(url, PAGE_URL)
        parts = [
            HEADER,
            f"```console\n$ sustain -S {PAGE_URL} worker tour_app:sustain --group workers\n"
            f"{banner}\n```\n",
        ]
        for step in STEPS:
            if step.wait_for is not None:
                wait(lambda s=step: exists(str(s.wait_for), env), step.wait_for)
            shown, code = run(step.command, env, url)
            parts.append(f"\n{step.text}\n\n{console(step.command, shown, code)}")
        return "".join(parts)
    finally:
        for proc in (worker, server):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main() -> None:
    import tempfile  # noqa: PLC0415

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS / "cli-tour.md"
    with tempfile.TemporaryDirectory() as tmp:
        out.write_text(record(Path(tmp)))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
