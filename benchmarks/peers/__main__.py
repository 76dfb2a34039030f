"""``python -m benchmarks.peers [w1 w2 w3 w4] [--runs N] [--quick] [--systems ...]``.

Installs the peers once (``envs.py``; a peer that cannot be installed or started is reported
as unavailable with a one-line reason, and the others are still measured), then runs every
workload on every system, interleaved (run 1 of every system, then run 2, ...) so that a
change of the shared machine's load hits all systems alike.  Prints one JSON line per run,
then one table per workload (``table.py``) with the load average before and after, and
issue 22's goal table (``goals.py``: Sustain ÷ Restate, and Sustain on PostgreSQL ÷
resonate-pg on W1/W2, higher is better).  Exits 1 if any run failed a check or crashed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import sys
import traceback
from collections.abc import Callable

from benchmarks import cluster, workflows
from benchmarks.peers import dbos_peer, envs, restate_peer
from benchmarks.peers.goals import goals_table
from benchmarks.peers.table import workload_table
from benchmarks.peers.workloads import WORKLOADS, Row, failed_row, size_of
from benchmarks.throwaway_db import NoPostgres

SYSTEMS = (
    "embedded", "server", "dbos-sqlite", "dbos-postgres", "restate", "postgres", "resonate-pg",
)  # fmt: skip
# Issue 22 compares the PostgreSQL implementations on W1 and W2 only.
ONLY: dict[str, tuple[str, ...]] = {"postgres": ("w1", "w2"), "resonate-pg": ("w1", "w2")}

Runner = Callable[[str, str, int], Row]


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


class Systems:
    """The runnable systems, their display names, versions, and the unavailable ones."""

    def __init__(self, chosen: list[str], pg_url: str) -> None:
        self.names: dict[str, str] = {}
        self.runners: dict[str, Runner] = {}
        self.unavailable: dict[str, str] = {}
        self.versions: list[str] = []
        self.pg_url = pg_url
        for mode in SYSTEMS:
            if mode in chosen:
                self._add(mode)

    def _add(self, mode: str) -> None:
        if mode in ("embedded", "server"):
            self.names[mode] = f"Sustain {mode} (SQLite)"
            self.runners[mode] = workflows.run_once
            return
        try:
            if mode == "postgres":
                self.names[mode] = "Sustain server (PostgreSQL, 1 replica)"
                try:
                    _ = cluster.DATABASES.admin_url  # no PostgreSQL: unavailable, not failed
                except NoPostgres as exc:
                    raise envs.Unavailable(str(exc)) from exc
                self.runners[mode] = _sustain_postgres
            elif mode.startswith("dbos"):
                self._add_dbos(mode)
            elif mode == "resonate-pg":
                self._add_resonate_pg(mode)
            else:
                self._add_restate(mode)
        except envs.Unavailable as exc:
            self.unavailable[mode] = str(exc)

    def _add_dbos(self, mode: str) -> None:
        backend = mode.split("-", 1)[1]
        self.names[mode] = f"DBOS ({'SQLite' if backend == 'sqlite' else 'PostgreSQL'})"
        env = envs.dbos_env()
        if backend == "postgres":
            dbos_peer.check_postgres(self.pg_url)
        version = ", ".join(f"{k} {v}" for k, v in env.versions.items())
        if version not in self.versions:
            self.versions.append(version)

        def run(workload: str, mode: str, size: int) -> Row:
            return dbos_peer.run_once(env, backend, workload, mode, size, pg_url=self.pg_url)

        self.runners[mode] = run

    def _add_restate(self, mode: str) -> None:
        self.names[mode] = "Restate"
        env = envs.restate_sdk_env()
        binary, version = envs.restate_server()
        self.versions.append(f"restate-server {version}, " + ", ".join(
            f"{k} {v}" for k, v in env.versions.items()
        ))  # fmt: skip

        def run(workload: str, mode: str, size: int) -> Row:
            return restate_peer.run_once(binary, env, workload, mode, size)

        self.runners[mode] = run

    def _add_resonate_pg(self, mode: str) -> None:
        self.names[mode] = "resonate-pg"
        env = envs.resonate_pg_env()
        self.versions.append(", ".join(f"{k} {v}" for k, v in env.versions.items()))
        schema = os.environ.get(envs.RESONATE_PG_SCHEMA_ENV)
        if not schema:
            raise envs.Unavailable(
                f"not installable here: {', '.join(envs.RESONATE_PG_PINS)} installed from "
                "PyPI, but they are only the client connector; the server is the SQL file "
                "resonate.sql (stored procedures), which no PyPI, npm or Debian package "
                "ships (only the project's GitHub repository) and which is not on this "
                f"machine; give a copy in {envs.RESONATE_PG_SCHEMA_ENV} to measure it"
            )
        # A schema file is given, but the W1/W2 runner on resonate-sdk + resonate-pg could
        # not be written and checked without one: say so rather than print a made-up row.
        raise envs.Unavailable(f"{envs.RESONATE_PG_SCHEMA_ENV} is set, but no runner yet")


def _sustain_postgres(workload: str, mode: str, size: int) -> Row:
    """W1/W2 in server mode on one PostgreSQL replica: exactly ``python -m benchmarks pg``."""
    row = cluster.sdk_once(workload, size, 1, 1)
    return {**row, "workload": workload, "mode": mode,
            "case": f"{mode} {size:,} {'steps' if workload == 'w1' else 'workflows'}"}  # fmt: skip


def _one_run(systems: Systems, mode: str, workload: str, size: int) -> Row | None:
    """One JSON row, or None if the system turned out not to start here (it is then
    reported as unavailable, not as a failed check, and not tried again)."""
    try:
        return systems.runners[mode](workload, mode, size)
    except envs.Unavailable as exc:
        systems.unavailable[mode] = str(exc)
        del systems.runners[mode]
        print(f"# {mode}: unavailable: {exc}", file=sys.stderr, flush=True)
        return None
    except Exception as exc:
        row = failed_row(workload, mode, size, repr(exc))
        row["trace"] = traceback.format_exc(limit=3)
        return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "workloads", nargs="*", metavar="WORKLOAD", help="any of w1 w2 w3 w4 (default: all)"
    )
    parser.add_argument(
        "--runs", type=int, default=None, help="runs per system (default 3; --quick: 1)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: small counts, 1 run unless --runs"
    )
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all)",
    )
    parser.add_argument("--pg-url", default=dbos_peer.DEFAULT_PG_URL,
                        help="PostgreSQL server for DBOS; each run creates and drops its own "
                        f"database there (default {dbos_peer.DEFAULT_PG_URL})")  # fmt: skip
    args = parser.parse_args(argv)
    chosen = [w.lower() for w in args.workloads] or list(WORKLOADS)
    modes = [m.strip() for m in args.systems.split(",") if m.strip()]
    unknown = sorted((set(chosen) - set(WORKLOADS)) | (set(modes) - set(SYSTEMS)))
    if unknown:
        parser.error(f"unknown workload(s) or system(s): {', '.join(unknown)}")
    repeat = args.runs or (1 if args.quick else 3)
    # SIGTERM (a CI timeout, kill) must still run the finally blocks that stop servers.
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _measure(chosen, modes, args, repeat)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _measure(chosen: list[str], modes: list[str], args: argparse.Namespace, repeat: int) -> int:
    systems = Systems(modes, args.pg_url)
    for mode, reason in systems.unavailable.items():
        print(f"# {mode}: unavailable: {reason}", file=sys.stderr, flush=True)
    started = datetime.datetime.now(datetime.UTC)
    load_before = os.getloadavg()
    rows: list[Row] = []
    for _ in range(repeat):
        for workload in chosen:
            size = size_of(workload, args.quick)
            for mode in [m for m in SYSTEMS if m in systems.runners
                         and workload in ONLY.get(m, WORKLOADS)]:  # fmt: skip
                row = _one_run(systems, mode, workload, size)
                if row is not None:
                    print(json.dumps(row), flush=True)
                    rows.append(row)
                    if row.get("errors"):  # loudly, at once, not only in the final count
                        what = row.get("error") or "wrong result(s)"
                        print(f"# FAILED: {row['case']}: {row['errors']} error(s): {what}",
                              file=sys.stderr, flush=True)  # fmt: skip
    load_after = os.getloadavg()

    print()
    print(f"Sustain and its peers, {started:%Y-%m-%d %H:%M} UTC, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average before "
          f"{load_before[0]:.2f} after {load_after[0]:.2f} (1 min); medians over "
          f"{repeat} run(s){' [--quick]' if args.quick else ''}.")  # fmt: skip
    for version in systems.versions:
        print(f"Peer versions: {version}.")
    for workload in chosen:
        print()
        names = {m: n for m, n in systems.names.items() if workload in ONLY.get(m, WORKLOADS)}
        print(workload_table(workload, rows, names, systems.unavailable))
    print()
    print(goals_table(rows, systems.names, systems.unavailable, chosen))
    if systems.unavailable:
        print()
    for mode, reason in systems.unavailable.items():
        print(f"{systems.names.get(mode, mode)}: unavailable: {reason}")
    failed = sum(int(r.get("errors") or 0) for r in rows)
    if failed:
        print(f"\n{failed} failed check(s): see the JSON lines above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
