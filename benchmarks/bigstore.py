"""A big store (issue 22): ``python -m benchmarks bigstore [--promises N]``.

The same measurements on two SQLite files in one run, so the big one is read against a
baseline measured beside it:

* **empty**: the schema (``sustain migrate``) and one execution of 1,000 promises (the
  tree the ``sustain tree`` measurement draws; its steps carry ``bench:batch`` too);
* **big**: the same, plus ``N`` settled promises (default 1,000,000), ``N / 10`` pending
  promises with timeouts and 1,000 schedules.

Pre-loading goes through SQL straight into the store's schema (``executemany`` in one
transaction, ``synchronous=OFF``): through the engine, a million promises would take longer
than the benchmark itself.  The rows are what the engine writes (``sustain.store.rows``: JSON
text tags with the reserved tags copied to the ``target`` / ``branch`` / ``origin``
columns):

* settled: executions of three promises as ``ui.py`` makes them (a root with a target and a
  ``func`` in its param, origin = itself; a ``ctx.run`` child ``:1``; an rpc child ``:2``),
  resolved, each tagged ``bench:batch = b<i mod 1000>`` (the tag that ``promise.search`` by
  tag looks for: 1 promise in 1,000 matches, spread over the whole id range);
* pending: no target (so no task), ``timeoutAt`` 7 days ahead, spread by the millisecond;
* schedules: ``0 0 1 1 *`` (next 1 January: none fires during the run).

Then, on each file, a ``sustain serve`` on a copy:

* **start-up**: from process start to ``/ready`` answering 200, and the RSS right after;
* **UI executions page**: server time (``Server-Timing``) of ``/ui/executions``, median of 10;
* **search by tag**: wall time of ``promise.search`` with ``{"bench:batch": "b7"}``
  (limit 100), median of 10;
* **tree**: wall time of what ``sustain tree`` asks (``promise.get`` of the root, then
  ``promise.search`` by ``resonate:origin`` in pages of 100) over the 1,000-node execution,
  median of 5; and once the ``sustain tree`` command itself (with its interpreter start-up);
* **S1**: 64 clients for 3 s (``throughput.launch``), ops/s;
* **W2**: 1,000 three-step workflows (a ``sustain worker`` and a caller, as ``pg``), wf/s;
* RSS after all that; then, on a second copy, **timer lateness**: 1,000 timers spread over
  one second, delivered by SSE (``timers.py``).

The goal: within 1.3x of the empty store for S1, W2 and timers; the three reads under
100 ms; start-up under 2 s.

On PostgreSQL (``--bigstore-backends``; both by default) the same rows go in with ``COPY``
into a throw-away database (``sustain migrate --postgres`` first; statistics left to
autovacuum), and
every server gets its own clone of it (``CREATE DATABASE ... TEMPLATE``), dropped at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import psycopg.conninfo

from benchmarks import throughput, timers, workflows
from benchmarks.cluster import DATABASES, _start_worker, _stop
from benchmarks.harness import Server, clean_env
from benchmarks.rpc import VERSION
from benchmarks.sdk_app import GROUP
from benchmarks.sdk_modes import SUSTAIN_CLI, Mode, pid_cpu, self_cpu
from benchmarks.stats import Row, fmt, table
from benchmarks.ui import _fetch
from sustain import Sustain
from sustain.sdk.handles import Handle

PROMISES, QUICK_PROMISES = 1_000_000, 10_000
SCHEDULES = 1_000
TREE_NODES = 1_000
TREE_ROOT = "tree-root"
SEARCH_TAGS = {"bench:batch": "b7"}
DAY_MS = 86_400_000


def _b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def _tags(tags: dict[str, str]) -> str:
    return json.dumps(tags, separators=(",", ":"))


_P_INSERT = (
    "INSERT INTO promises (id, state, param_headers, param_data, value_headers, value_data, "
    "tags, timeout_at, created_at, settled_at, target, branch, origin) "
    "VALUES (?, ?, NULL, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_S_INSERT = (
    "INSERT INTO schedules (id, cron, promise_id, promise_timeout, promise_param_headers, "
    "promise_param_data, promise_tags, created_at, next_run_at, last_run_at) "
    "VALUES (?, ?, ?, ?, NULL, NULL, '{}', ?, ?, NULL)"
)
_ROOT_PARAM = _b64({"func": "checkout", "args": [1], "kwargs": {}, "version": 1})
_STEP_PARAM = _b64({"func": "charge", "version": 1})
_RPC_PARAM = _b64({"func": "ship", "args": [1], "kwargs": {}, "version": 1})
_VALUE = _b64("ok")
_TARGET = "poll://any@bench"


def _settled(count: int, now: int) -> Iterator[tuple[Any, ...]]:
    """``count`` settled promises, three per execution (root, ``:1`` step, ``:2`` rpc)."""
    far = now + 30 * DAY_MS
    for i in range(count):
        root = f"done-{i // 3:07d}"
        kind = i % 3
        batch = f"b{i % 1000}"
        if kind == 0:
            tags = {
                "resonate:origin": root,
                "resonate:branch": root,
                "resonate:parent": root,
                "resonate:scope": "global",
                "resonate:target": _TARGET,
                "bench:batch": batch,
            }
            yield (root, "resolved", _ROOT_PARAM, _VALUE, _tags(tags), far, now, now,
                   _TARGET, root, root)  # fmt: skip
        elif kind == 1:
            pid = f"{root}:1"
            tags = {"resonate:origin": root, "resonate:branch": root, "resonate:parent": root,
                    "resonate:scope": "local", "bench:batch": batch}  # fmt: skip
            yield (pid, "resolved", _STEP_PARAM, _VALUE, _tags(tags), far, now, now,
                   None, root, root)  # fmt: skip
        else:
            pid = f"{root}:2"
            tags = {"resonate:origin": root, "resonate:branch": pid, "resonate:parent": root,
                    "resonate:scope": "global", "bench:batch": batch}  # fmt: skip
            yield (pid, "resolved", _RPC_PARAM, _VALUE, _tags(tags), far, now, now,
                   None, pid, root)  # fmt: skip


def _pending(count: int, now: int) -> Iterator[tuple[Any, ...]]:
    start = now + 7 * DAY_MS
    for i in range(count):
        yield (f"wait-{i:07d}", "pending", None, None, "{}", start + i, now, None,
               None, None, None)  # fmt: skip


def _tree(now: int) -> Iterator[tuple[Any, ...]]:
    far = now + 30 * DAY_MS
    root_tags = {"resonate:origin": TREE_ROOT, "resonate:branch": TREE_ROOT,
                 "resonate:target": _TARGET, "resonate:scope": "global"}  # fmt: skip
    yield (TREE_ROOT, "resolved", _ROOT_PARAM, _VALUE, _tags(root_tags), far, now, now,
           _TARGET, TREE_ROOT, TREE_ROOT)  # fmt: skip
    for k in range(1, TREE_NODES):
        # The batch tag here too, so that the empty store's search by tag finds something.
        tags = {"resonate:origin": TREE_ROOT, "resonate:branch": TREE_ROOT,
                "resonate:parent": TREE_ROOT, "resonate:scope": "local",
                "bench:batch": f"b{k % 1000}"}  # fmt: skip
        yield (f"{TREE_ROOT}.{k}", "resolved", _STEP_PARAM, _VALUE, _tags(tags), far, now,
               now, None, TREE_ROOT, TREE_ROOT)  # fmt: skip


def _next_new_year_ms(now: int) -> int:
    year = datetime.fromtimestamp(now / 1000, UTC).year + 1
    return int(datetime(year, 1, 1, tzinfo=UTC).timestamp() * 1000)


def _schedules(count: int, now: int) -> Iterator[tuple[Any, ...]]:
    nxt = _next_new_year_ms(now)
    for i in range(count):
        yield (f"sched-{i:04d}", "0 0 1 1 *", "{{.id}}-{{.timestamp}}", 60_000, now, nxt)


def preload(path: Path, settled: int, pending: int, schedules: int) -> float:
    """Migrate ``path`` with ``sustain migrate``, then write the rows; answers seconds."""
    started = time.perf_counter()
    subprocess.run([str(SUSTAIN_CLI), "migrate", "--sqlite-path", str(path)], env=clean_env(),
                   check=True, capture_output=True)  # fmt: skip
    now = int(time.time() * 1000)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        # A throw-away file being built: no fsync until the end (the final commit and
        # close still leave a consistent file).
        db.execute("PRAGMA synchronous=OFF")
        db.execute("BEGIN")
        db.executemany(_P_INSERT, _tree(now))
        db.executemany(_P_INSERT, _settled(settled, now))
        db.executemany(_P_INSERT, _pending(pending, now))
        db.executemany(_S_INSERT, _schedules(schedules, now))
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.close()
    return time.perf_counter() - started


def preload_postgres(url: str, settled: int, pending: int, schedules: int) -> float:
    """The same rows into a PostgreSQL database (``sustain migrate --postgres``, then
    ``COPY``); answers seconds."""
    started = time.perf_counter()
    subprocess.run([str(SUSTAIN_CLI), "migrate", "--postgres", url], env=clean_env(),
                   check=True, capture_output=True)  # fmt: skip
    now = int(time.time() * 1000)
    p_cols = ("id, state, param_data, value_data, tags, timeout_at, created_at, settled_at, "
              "target, branch, origin")  # fmt: skip
    s_cols = "id, cron, promise_id, promise_timeout, created_at, next_run_at"
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            with cur.copy(f"COPY promises ({p_cols}) FROM STDIN") as copy:
                for rows in (_tree(now), _settled(settled, now), _pending(pending, now)):
                    for row in rows:
                        copy.write_row(row)
            with cur.copy(f"COPY schedules ({s_cols}) FROM STDIN") as copy:
                for row in _schedules(schedules, now):
                    copy.write_row(row)
        conn.commit()
    # No explicit ANALYZE: statistics are left to autovacuum, as after any bulk load.  An
    # ANALYZE here (tried) made W2 after S1 on the same server run at 11-33 workflows/s
    # instead of ~250: the plans then follow statistics taken before S1's writes (see
    # benchmarks/README.md, "bigstore").
    return time.perf_counter() - started


# -- servers on copies of a pre-loaded store --------------------------------------------------
class SqliteTemplate:
    """A pre-loaded SQLite file; every server gets its own copy."""

    backend = "SQLite"

    def __init__(self, path: Path) -> None:
        self.path = path

    def server(self, extra: tuple[str, ...] = ()) -> Server:
        server = Server(extra=extra)
        shutil.copyfile(self.path, server.db)
        return server

    def size_mb(self, server: Server) -> float:
        return server.db_bytes() / 2**20

    def wait_streams(self) -> None:
        """Nothing: one SQLite server holds its poll streams in memory, and the warm-up
        call is repeated until the streams answer."""

    def close(self) -> None:
        """Nothing: the copies go with their servers' directories."""


class PostgresTemplate:
    """A pre-loaded PostgreSQL database; every server gets its own clone
    (``CREATE DATABASE ... TEMPLATE``: a file copy, no re-load), dropped by ``close``."""

    backend = "PostgreSQL"

    def __init__(self, url: str) -> None:
        self.url = url
        self.clones: list[str] = []

    def server(self, extra: tuple[str, ...] = ()) -> Server:
        name = f"{DATABASES.prefix}{os.getpid()}_{uuid.uuid4().hex[:10]}"
        template = psycopg.conninfo.conninfo_to_dict(self.url)["dbname"]
        with psycopg.connect(DATABASES.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        clone = DATABASES.url_for(name)
        self.clones.append(clone)
        return Server(extra=("--postgres", clone, *extra))

    def wait_streams(self, timeout: float = 60.0) -> None:
        """Until the worker's and the caller's poll streams are published: on PostgreSQL an
        execute for a stream not yet listed is held for a replica timeout and then dropped
        (as ``cluster.py`` waits), which a 1,000-workflow W2 pays as task retries."""
        deadline = time.monotonic() + timeout
        query = "SELECT count(*) FROM poll_connections WHERE poll_group = %s"
        with psycopg.connect(self.clones[-1], autocommit=True) as conn:
            for group in (GROUP, "callers"):
                while not (row := conn.execute(query, (group,)).fetchone()) or row[0] < 1:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"poll stream of {group!r} not connected")
                    time.sleep(0.05)

    def size_mb(self, server: Server) -> float:
        with psycopg.connect(self.clones[-1]) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return float(row[0]) / 2**20 if row else 0.0

    def close(self) -> None:
        for clone in self.clones:
            with contextlib.suppress(psycopg.Error):
                DATABASES.drop(clone)
        self.clones.clear()


Template = SqliteTemplate | PostgresTemplate


def _rpc(url: str, kind: str, data: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(wall ms, answer data) of one protocol request."""
    body = json.dumps({"kind": kind, "head": {"corrId": "b", "version": VERSION}, "data": data})
    request = urllib.request.Request(
        url, data=body.encode(), headers={"content-type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        raw = answer.read()
    wall = (time.perf_counter() - started) * 1000
    decoded = json.loads(raw)
    if decoded.get("head", {}).get("status") != 200:
        raise RuntimeError(f"{kind}: {raw[:300]!r}")
    found: dict[str, Any] = decoded["data"]
    return wall, found


def _search_ms(url: str) -> float:
    ms, data = _rpc(url, "promise.search", {"tags": SEARCH_TAGS, "limit": 100})
    if not data.get("promises"):
        raise RuntimeError("promise.search by tag found nothing")
    return ms


def _tree_ms(url: str) -> float:
    """What ``sustain tree`` asks the server (cli/tree.py), timed in this process."""
    started = time.perf_counter()
    _rpc(url, "promise.get", {"id": TREE_ROOT})
    seen, cursor = 0, None
    while True:
        data: dict[str, Any] = {"tags": {"resonate:origin": TREE_ROOT}, "limit": 100}
        if cursor is not None:
            data["cursor"] = cursor
        _, page = _rpc(url, "promise.search", data)
        seen += len(page.get("promises") or [])
        cursor = page.get("cursor")
        if not cursor:
            break
    if seen != TREE_NODES:
        raise RuntimeError(f"tree: {seen} promises, expected {TREE_NODES}")
    return (time.perf_counter() - started) * 1000


def _tree_cli_ms(url: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(SUSTAIN_CLI), "-S", url, "--json", "tree", TREE_ROOT], env=clean_env(),
                   check=True, capture_output=True, timeout=60)  # fmt: skip
    return (time.perf_counter() - started) * 1000


class OnServer(Mode):
    """Server mode of the SDK workloads on a server that is already running."""

    name = "server"

    def __init__(self, server: Server, template: Template) -> None:
        self.server = server
        self.worker = _start_worker(server.url, server.dir / "worker.log")
        self.caller = Sustain(url=server.url, group="callers")
        try:
            self.caller.start()
            self.view = self.caller.options(target=GROUP)
            template.wait_streams()
        except BaseException:
            self.close()
            raise

    def call(self, id: str, func: str, *args: Any) -> Handle[Any]:
        return self.view.rpc(id, func, *args)

    def cpu_parts(self) -> dict[str, float]:
        return {"caller": self_cpu(), "server": self.server.cpu_seconds(),
                "worker": pid_cpu(self.worker.pid)}  # fmt: skip

    def close(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self.caller.stop()
        finally:
            _stop(self.worker)


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def measure(store: str, template: Template, quick: bool) -> Row:
    row: Row = {"workload": "bigstore", "case": store, "backend": template.backend, "errors": 0}
    server = template.server()
    try:
        t0 = time.perf_counter()
        server.start()
        row["startup_s"] = time.perf_counter() - t0
        row["rss_idle_mb"] = server.memory_kb()["VmRSS"] / 1024
        _fetch(server.url + "ui/executions")  # the first request imports the UI
        row["ui_executions_ms"] = _median(
            [_fetch(server.url + "ui/executions")[0] for _ in range(10)]
        )
        row["search_tag_ms"] = _median([_search_ms(server.url) for _ in range(10)])
        row["tree_ms"] = _median([_tree_ms(server.url) for _ in range(5)])
        row["tree_cli_ms"] = _tree_cli_ms(server.url)
        seconds = 1.5 if quick else 3.0
        procs, _, end_at = throughput.launch(
            [server.url], 64, f"big-{store}", warmup=1.0, seconds=seconds, client="raw"
        )
        time.sleep(max(0.0, end_at - time.time()))
        s1 = throughput.summary(throughput.collect(procs), seconds)
        row["s1_ops_per_s"] = s1["ops_per_s"]
        row["errors"] += s1["errors"] + int(s1["ops"] == 0)
        mode = OnServer(server, template)
        with mode:  # warms up; stops the worker and the caller at the end
            w2 = workflows.w2(mode, 200 if quick else 1000)
        row["w2_workflows_per_s"] = w2["workflows_per_s"]
        row["errors"] += w2["errors"]
        memory = server.memory_kb()
        row["rss_mb"], row["rss_peak_mb"] = memory["VmRSS"] / 1024, memory["VmHWM"] / 1024
        row["db_mb"] = template.size_mb(server)
    except Exception as exc:  # a failed run is a result line with errors, not a crash
        row.update({"errors": row["errors"] + 1, "error": repr(exc)})
    finally:
        server.cleanup()

    def start(extra: tuple[str, ...]) -> Server:
        return template.server(extra).start()

    late = timers.run_once(200 if quick else 1000, "spread", "sse", start)
    row["timers_p99_ms"] = late.get("p99_ms")
    row["timers_p50_ms"] = late.get("p50_ms")
    row["errors"] += int(late.get("errors") or 0) + int(late.get("missing") or 0)
    return row


BACKENDS = ("sqlite", "postgres")


def runs(
    quick: bool, repeat: int, promises: int | None = None, backends: tuple[str, ...] = BACKENDS
) -> list[Row]:
    settled = promises or (QUICK_PROMISES if quick else PROMISES)
    out: list[Row] = []
    for backend in backends:
        try:
            out += _runs(backend, quick, repeat, settled)
        except Exception as exc:  # e.g. no PostgreSQL here: a failed row, the rest still runs
            row = {"workload": "bigstore", "case": "big", "backend": backend, "errors": 1,
                   "error": repr(exc)}  # fmt: skip
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def _runs(backend: str, quick: bool, repeat: int, settled: int) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="sustain-bench-bigstore-"))
    made: list[str] = []
    templates: list[Template] = []
    out: list[Row] = []
    try:
        if backend == "sqlite":
            empty_path, big_path = folder / "empty.db", folder / "big.db"
            preload(empty_path, 0, 0, 0)
            seconds = preload(big_path, settled, settled // 10, SCHEDULES)
            size = big_path.stat().st_size / 2**20
            empty: Template = SqliteTemplate(empty_path)
            big: Template = SqliteTemplate(big_path)
        else:
            made += [DATABASES.create(), DATABASES.create()]
            preload_postgres(made[0], 0, 0, 0)
            seconds = preload_postgres(made[1], settled, settled // 10, SCHEDULES)
            with psycopg.connect(made[1]) as conn:
                found = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            size = float(found[0]) / 2**20 if found else 0.0
            empty, big = PostgresTemplate(made[0]), PostgresTemplate(made[1])
        templates += [empty, big]
        note = {"settled": settled, "pending": settled // 10, "schedules": SCHEDULES,
                "preload_s": seconds, "file_mb": size}  # fmt: skip
        print(json.dumps({"workload": "bigstore-preload", "backend": backend, **note}),
              flush=True)  # fmt: skip
        for _ in range(repeat):
            for store, template in (("empty", empty), ("big", big)):
                row = {**measure(store, template, quick), **note}
                print(json.dumps(row), flush=True)
                out.append(row)
    finally:
        for template in templates:
            template.close()
        for url in made:
            with contextlib.suppress(psycopg.Error):
                DATABASES.drop(url)
        shutil.rmtree(folder, ignore_errors=True)
    return out


# (label, key, digits, lower is better, goal): goal "x1.3" = within 1.3x of the empty
# store; a number = an absolute bound of the issue (ms or s).
METRICS: tuple[tuple[str, str, int, bool, str], ...] = (
    ("server start-up, s", "startup_s", 2, True, "< 2 s"),
    ("RSS after start-up, MB", "rss_idle_mb", 1, True, ""),
    ("UI executions page, server ms", "ui_executions_ms", 1, True, "< 100 ms"),
    ("promise.search by tag, ms", "search_tag_ms", 1, True, "< 100 ms"),
    (f"tree of {TREE_NODES:,} nodes (requests), ms", "tree_ms", 1, True, "< 100 ms"),
    ("`sustain tree` command, ms", "tree_cli_ms", 0, True, ""),
    ("S1 64 clients, ops/s", "s1_ops_per_s", 0, False, "within 1.3x"),
    ("W2 workflows/s", "w2_workflows_per_s", 0, False, "within 1.3x"),
    ("timers spread SSE, p99 ms", "timers_p99_ms", 1, True, "within 1.3x"),
    ("RSS after the workloads, MB", "rss_mb", 1, True, ""),
    ("peak RSS, MB", "rss_peak_mb", 1, True, ""),
    ("database file, MB", "db_mb", 0, True, ""),
)


def _met(goal: str, lower: bool, empty: float | None, big: float | None, key: str) -> str:
    if big is None or not goal:
        return "-"
    if goal.startswith("within"):
        if empty is None or empty <= 0 or big <= 0:
            return "-"
        worse = big / empty if lower else empty / big
        return "**yes**" if worse <= 1.3 else "no"
    bound = float(goal.split()[1])
    return "**yes**" if big < bound else "no"


def bigstore_table(rows: list[Row]) -> str:
    backends = dict.fromkeys(str(r.get("backend", "SQLite")) for r in rows
                             if r.get("workload") == "bigstore")  # fmt: skip
    return "\n\n".join(
        _backend_table([r for r in rows if str(r.get("backend", "SQLite")) == b], b)
        for b in backends
    )


def _backend_table(rows: list[Row], backend: str) -> str:
    good = [r for r in rows if r.get("workload") == "bigstore" and not r.get("errors")]
    by = {store: [r for r in good if r["case"] == store] for store in ("empty", "big")}
    out = []
    for label, key, digits, lower, goal in METRICS:
        vals = {}
        for store, runs in by.items():
            values = [float(r[key]) for r in runs if isinstance(r.get(key), int | float)]
            vals[store] = statistics.median(values) if values else None
        empty, big = vals["empty"], vals["big"]
        ratio = "-"
        if empty and big:
            ratio = f"{(big / empty if lower else empty / big):.2f}x"
        out.append([label, fmt(empty, digits), fmt(big, digits), ratio, goal or "-",
                    _met(goal, lower, empty, big, key)])  # fmt: skip
    sizes = next((r for r in rows if r.get("workload") == "bigstore"), {})
    head = (
        f"big = {sizes.get('settled', 0):,} settled + {sizes.get('pending', 0):,} pending "
        f"promises + {sizes.get('schedules', 0):,} schedules (+ the {TREE_NODES:,}-node tree "
        "in both)"
    )
    headers = [f"Big store ({backend})", "empty", "big", "big ÷ empty (worse)", "goal", "met?"]
    failed = sum(1 for r in rows if r.get("workload") == "bigstore" and r.get("errors"))
    return (
        table(headers, out)
        + f"\n{head}; medians of {len(by['big'])} passing run(s), {failed} failed."
        + "\n'worse' = big ÷ empty for times and MB, empty ÷ big for rates: 1.00 = no slower."
    )
