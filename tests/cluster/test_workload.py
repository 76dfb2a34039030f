"""Three replicas on one PostgreSQL database under a workload, one of them killed -9.

Caller workers talk to replica r1, callee workers to r2, the client to r3 (tests/cluster/
app.py, client.py): each workflow runs a step, calls ``callee`` on the other group
(executes cross from the replica that writes them to r2's streams, unblocks back to r3's),
sleeps durably, runs a last step.  A seconds-resolution schedule ticks meanwhile.  r2 is
SIGKILLed mid-load and restarted on its port once the others consider it dead.  Then: every
workflow returned its result, every step ran exactly once (effects are counted in a file),
and the schedule fired every second exactly once: no tick lost, none doubled.
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from pathlib import Path

from sustain import Sustain
from tests.cluster.conftest import REPLICA_TIMEOUT_MS, Replicas
from tests.scenarios.processes import Proc, sustain_worker, wait_until

APP = "tests.cluster.app:sustain"
WORKFLOWS = 40
FLAGS = ("--retry-timeout", "2000")


TICKS = "SELECT id FROM promises WHERE id ~ '^tick[.:][0-9]+$' ORDER BY id"


def tick_times(cluster: Replicas) -> list[int]:
    """The schedule's tick times (ms) so far, from its promise ids ``tick.<ms>``."""
    return sorted(int(re.split("[.:]", id)[1]) for (id,) in cluster.sql(TICKS))


def effects(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    lines = path.read_text().splitlines()
    return Counter(line.rsplit(" ", 1)[0] for line in lines if line)


def test_workflows_rpc_sleeps_and_a_schedule_survive_a_killed_replica(
    cluster: Replicas, tmp_path: Path
) -> None:
    r1, r2, r3 = (cluster.start(name, *FLAGS) for name in ("r1", "r2", "r3"))
    sink = tmp_path / "effects.log"

    def env(url: str, group: str) -> dict[str, str]:
        # The lease: long enough to outlive r2's outage (a worker keeps its tasks and its
        # steps run once), short enough that a task whose acquire was answered by r2 just
        # before the kill (the worker never heard, the lease must lapse) is soon retried.
        return {"SUSTAIN_URL": url, "APP_GROUP": group, "APP_EFFECTS": str(sink), "APP_TTL": "15"}

    for i in range(2):
        sustain_worker(APP, "callers", tmp_path / f"caller{i}.log", env(r1.url, "callers"))
        sustain_worker(APP, "callees", tmp_path / f"callee{i}.log", env(r2.url, "callees"))
    admin = Sustain(url=r3.url, group="admin")
    try:
        admin.options(target="callers").schedule("tick", "* * * * * *", "tick")
        client = Proc(
            ["-m", "tests.cluster.client", "0", str(WORKFLOWS)],
            tmp_path / "client.log",
            {"SUSTAIN_URL": r3.url},
        )
        # Mid-load: some workflows finished, most are in flight.
        wait_until(
            lambda: sum(1 for k in effects(sink) if k.endswith(".end")) >= 5,
            60,
            "the first workflows to finish",
        )
        cluster.kill9("r2")
        at_kill = effects(sink)
        assert sum(1 for k in at_kill if k.endswith(".end")) < WORKFLOWS, "killed too late"
        stale = (
            "SELECT count(*) FROM replicas WHERE id = 'r2'"
            f" AND heartbeat_at < now() - interval '{REPLICA_TIMEOUT_MS} milliseconds'"
        )
        wait_until(lambda: cluster.sql(stale) == [(1,)], 30, "r2 to be considered dead")
        cluster.start("r2", *FLAGS)  # same port: its workers reconnect
        restarted_ms = int(time.time() * 1000)
        at_restart = effects(sink)
        assert client.wait(120) == 0, client.output()
        # The workflows may finish within a few seconds: the schedule goes on until it has
        # ticked five times and twice after the restart.
        wait_until(lambda: len(tick_times(cluster)) >= 5, 60, "five schedule ticks")
        wait_until(lambda: max(tick_times(cluster)) >= restarted_ms + 2000, 60,
                   "two schedule ticks after the restart")  # fmt: skip
        admin.schedules.delete("tick")
    finally:
        admin.stop()
    results = dict(re.findall(r"^result (\d+) (\d+)$", client.output(), re.MULTILINE))
    assert results == {str(n): str(2 * n + 1) for n in range(WORKFLOWS)}, client.output()

    # The schedule: one promise per second from the first tick to the last, each run once.
    rows = cluster.sql(TICKS)
    ticks = tick_times(cluster)
    assert len(ticks) >= 5, ticks
    assert [b - a for a, b in itertools.pairwise(ticks)] == [1000] * (len(ticks) - 1)
    tick_ids = [id for (id,) in rows]

    def all_ticks_done() -> bool:
        done = cluster.sql(
            "SELECT count(*) FROM promises WHERE id = ANY(%s) AND state = 'resolved'", (tick_ids,)
        )
        return done == [(len(tick_ids),)]

    wait_until(all_ticks_done, 60, "every tick to run")
    counted = effects(sink)
    # The callee workers, whose replica was dead, did work again once it was back.
    callees = sum(1 for k in counted if k.startswith("callee"))
    assert callees > sum(1 for k in at_restart if k.startswith("callee")), (at_kill, at_restart)
    expected = Counter(
        [f"wf{n}.{step}" for n in range(WORKFLOWS) for step in ("start", "end")]
        + [f"callee{n}" for n in range(WORKFLOWS)]
        + [f"tick {id}" for id in tick_ids]
    )
    assert counted == expected, (counted - expected, expected - counted)
