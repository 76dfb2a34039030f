"""Restate runs: a fresh ``restate-server`` and service deployment per run, all on 127.0.0.1.

``Restate.start()``:

1. ``restate-server`` (the npm package's binary, ``envs.restate_server``) with a
   configuration file that puts its node, ingress and admin listeners on free 127.0.0.1
   ports, TCP only (no unix sockets), telemetry off, its data in a fresh temporary
   directory; everything else is Restate's default (single node, auto-provisioned).
2. The deployment: ``restate_app.py PORT`` in the Restate virtual environment (Hypercorn,
   HTTP/2, one process).
3. Registration: ``POST /deployments {"uri": ...}`` on the admin API.
4. Warm-up: ``POST /Ping/pong`` on the ingress until it answers "pong" (right after the
   registration the ingress may still answer 404 while the new schema propagates).

The workloads call the ingress with aiohttp from this process: W1 and W3 are one
request-response call (``POST /Chain/{key}/run``); W2 and W4 start every workflow with
``POST /Three/{key}/run/send`` (answered once the invocation is durably accepted), then
await every result with ``GET /restate/workflow/Three/{key}/attach``.  CPU: the server,
the deployment (``worker``) and this process (``caller``: the HTTP client).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.harness import REPO, free_port
from benchmarks.peers.envs import PythonEnv, Unavailable
from benchmarks.peers.workloads import SLEEP_S, Row, to_row
from benchmarks.sdk_modes import pid_cpu, self_cpu

APP = REPO / "benchmarks" / "peers" / "restate_app.py"
START_TIMEOUT = 90.0
RESULT_TIMEOUT = 300.0  # a handler that raises is retried forever by Restate
CONNECTIONS = 100  # concurrent ingress connections of the W2 / W4 client

CONFIG = """\
bind-address = "127.0.0.1:{node}"
advertised-address = "http://127.0.0.1:{node}/"
disable-telemetry = true
log-filter = "warn"

[ingress]
bind-address = "127.0.0.1:{ingress}"

[admin]
bind-address = "127.0.0.1:{admin}"
"""


def _stop(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Restate:
    def __init__(self, binary: Path, env: PythonEnv) -> None:
        self.binary = binary
        self.env = env
        self.dir = Path(tempfile.mkdtemp(prefix="sustain-bench-restate-"))
        self.ingress = f"http://127.0.0.1:{free_port()}"
        self.admin = f"http://127.0.0.1:{free_port()}"
        self.app_port = free_port()
        self.server: subprocess.Popen[bytes] | None = None
        self.app: subprocess.Popen[bytes] | None = None

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> Restate:
        try:
            self._start_server()
            self._start_app()
            asyncio.run(self._register_and_warm_up())
        except BaseException:
            self.stop()
            raise
        return self

    def _start_server(self) -> None:
        config = self.dir / "restate.toml"
        config.write_text(CONFIG.format(
            node=free_port(), ingress=self.ingress.rsplit(":", 1)[1],
            admin=self.admin.rsplit(":", 1)[1],
        ))  # fmt: skip
        cmd = [str(self.binary), "--config-file", str(config), "--base-dir",
               str(self.dir / "data"), "--node-name", "bench", "--listen-mode", "tcp",
               "--no-logo"]  # fmt: skip
        with (self.dir / "server.log").open("wb") as log:
            self.server = subprocess.Popen(cmd, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT)

    def _start_app(self) -> None:
        with (self.dir / "app.log").open("wb") as log:
            self.app = subprocess.Popen(
                [str(self.env.python), "-P", str(APP), str(self.app_port)],  # -P: see dbos_peer
                cwd=APP.parent, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def _check_alive(self) -> None:
        for name, proc in (("restate-server", self.server), ("deployment", self.app)):
            if proc is not None and proc.poll() is not None:
                log = self.dir / ("server.log" if proc is self.server else "app.log")
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise Unavailable(f"{name} exited {proc.returncode}: {tail[0][:300]}")

    async def _register_and_warm_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            last = "no answer"
            registered = False
            while time.monotonic() < deadline:
                self._check_alive()
                try:
                    if not registered:
                        body = {"uri": f"http://127.0.0.1:{self.app_port}/"}
                        async with session.post(f"{self.admin}/deployments", json=body) as r:
                            last = f"register: HTTP {r.status} {(await r.text())[:200]}"
                            registered = r.status in (200, 201)
                    if registered:
                        # No body, so no content-type: the ingress refuses one on a handler
                        # without input.
                        url = f"{self.ingress}/Ping/pong"
                        async with session.post(url, skip_auto_headers=["Content-Type"]) as r:
                            last = f"warm-up: HTTP {r.status} {(await r.text())[:200]}"
                            if r.status == 200 and json.loads(await r.text()) == "pong":
                                return
                            if r.status != 404:  # 404 only while the new schema propagates
                                raise Unavailable(f"Restate {last}")
                except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                    last = repr(exc)
                await asyncio.sleep(0.2)
        raise Unavailable(f"Restate not ready after {START_TIMEOUT:.0f}s: {last}")

    def stop(self) -> None:
        try:
            _stop(self.app, 10)
            _stop(self.server, 20)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Restate:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- measurements --------------------------------------------------------------------
    def cpu_parts(self) -> dict[str, float]:
        server = pid_cpu(self.server.pid) if self.server is not None else 0.0
        worker = pid_cpu(self.app.pid) if self.app is not None else 0.0
        return {"caller": self_cpu(), "server": server, "worker": worker}

    def run(self, workload: str, mode: str, size: int) -> Row:
        cpu0 = self.cpu_parts()
        raw = asyncio.run(self._workload(workload, size))
        cpu1 = self.cpu_parts()
        return to_row(workload, mode, size, raw, {k: cpu1[k] - cpu0[k] for k in cpu0})

    async def _workload(self, workload: str, size: int) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        timeout = aiohttp.ClientTimeout(total=RESULT_TIMEOUT)
        prefix = f"{workload}-{time.time_ns()}"
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            t0 = time.perf_counter()
            out: dict[str, Any]
            if workload == "w1":
                out = {"result": await self._call(session, f"/Chain/{prefix}/run", size)}
            elif workload == "w3":
                out = {"result": await self._call(session, f"/Fanout/{prefix}/run", size)}
            elif workload == "w2":
                results, _ = await self._many(session, "Three", prefix, list(range(size)))
                out = {"results": results}
            elif workload == "w4":
                wakes, invocations = await self._many(session, "Nap", prefix, [SLEEP_S] * size)
                out = {"wakes": wakes}
            else:
                raise ValueError(f"unknown workload {workload!r}")
            out["seconds"] = time.perf_counter() - t0
            if workload == "w4":
                # After the timed part: replace each workflow's own clock reading by the wake-up
                # time of its journaled sleep command, the analogue of Sustain's timeoutAt.
                deadlines = await self._sleep_deadlines(session)
                for pair, invocation in zip(wakes, invocations, strict=True):
                    pair[0] = deadlines.get(invocation)
                out["deadline"] = "recorded"
        return out

    async def _sleep_deadlines(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Invocation id -> wake-up time (epoch s) of its sleep, from Restate's SQL
        introspection (``sys_journal``, admin ``POST /query``)."""
        query = "SELECT id, entry_json FROM sys_journal WHERE entry_type = 'Command: Sleep'"
        headers = {"accept": "application/json"}
        async with session.post(f"{self.admin}/query", json={"query": query},
                                headers=headers) as answer:  # fmt: skip
            text = await answer.text()
            if answer.status != 200:
                raise RuntimeError(f"admin query: HTTP {answer.status}: {text[:200]}")
        deadlines = {}
        for row in json.loads(text)["rows"]:
            sleep = json.loads(row["entry_json"])["Command"]["Sleep"]
            deadlines[row["id"]] = sleep["wake_up_time"] / 1000
        return deadlines

    async def _call(
        self, session: aiohttp.ClientSession, path: str, body: Any, method: str = "POST"
    ) -> Any:
        data = None if method == "GET" else json.dumps(body)
        headers = {"content-type": "application/json"} if data is not None else {}
        async with session.request(method, self.ingress + path, data=data,
                                   headers=headers) as answer:  # fmt: skip
            text = await answer.text()
            if answer.status not in (200, 202):
                raise RuntimeError(f"{method} {path}: HTTP {answer.status}: {text[:200]}")
            return json.loads(text) if text else None

    async def _many(
        self, session: aiohttp.ClientSession, workflow: str, prefix: str, args: list[Any]
    ) -> tuple[list[Any], list[str]]:
        """Start one workflow per argument as fast as possible, then await every result;
        returns the results and the invocation ids."""
        keys = [f"{prefix}-{i}" for i in range(len(args))]
        sent = await asyncio.gather(*(
            self._call(session, f"/{workflow}/{key}/run/send", arg)
            for key, arg in zip(keys, args, strict=True)
        ))  # fmt: skip
        for key, answer in zip(keys, sent, strict=True):
            if not isinstance(answer, dict) or answer.get("status") != "Accepted":
                raise RuntimeError(f"{workflow}/{key}: not accepted: {answer!r}")
        results = list(await asyncio.gather(*(
            self._call(session, f"/restate/workflow/{workflow}/{key}/attach", None, "GET")
            for key in keys
        )))  # fmt: skip
        return results, [str(answer["invocationId"]) for answer in sent]


def run_once(binary: Path, env: PythonEnv, workload: str, mode: str, size: int) -> Row:
    with Restate(binary, env) as restate:
        return restate.run(workload, mode, size)
