"""Differential test: the engine against the reference model on random operation sequences.

Theory of operation (the Python re-creation of PROTOCOL.md §8.2): hypothesis draws sequences
of requests (``tests.model.generators``, guided by the model's state) with time moving forward
by 0-50 s (now and then 10 minutes), through ``debug.tick`` and through the ``now`` of ordinary
requests.  Every request goes to the reference model and to the engine on a real store
(memory, SQLite on a file, PostgreSQL in a throw-away database); the status and the full
answer must be equal, and so must ``debug.snap`` after every step.  The Outcome's hints for
the server's loops are checked too: a timer the step created or moved must be reported in
``deadline``, an outbox write must set ``wake_outbox``.  A failure prints the whole step list
and a unified diff.

Each backend test also checks coverage, as the Rust harness does and more: every operation
kind must have answered at least one 2xx, and the run must have reached every situation and
spec rule of ``FEATURES``, so a generator that silently stopped producing meaningful requests
fails loudly instead of passing vacuously.  (Derandomized: a change to the generators changes
the sequences; if a feature goes missing, tune the weights or cover it in
test_differential_scenarios.py.)

Scale: ``SUSTAIN_DIFF_EXAMPLES`` (default 100) sequences of ``SUSTAIN_DIFF_STEPS`` (default
30) steps per backend.  Derandomized so ``make test`` is reproducible; set
``SUSTAIN_DIFF_RANDOM=1`` to explore new sequences and ``SUSTAIN_DIFF_SHRINK=1`` to have
hypothesis shrink a failure to a minimal sequence (slow).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, Phase, given, note, seed, settings
from hypothesis import strategies as st

from sustain.engine import Engine, EngineConfig
from sustain.store.memory import MemoryStore
from sustain.store.sqlite import SqliteStore
from tests.model.generators import GENERATORS, chance, choose_kind, mutate, pick
from tests.model.reference import KINDS, ReferenceModel

T0 = 1_700_000_000_000
RETRY = 30000
EXAMPLES = int(os.environ.get("SUSTAIN_DIFF_EXAMPLES", "100"))
STEPS = int(os.environ.get("SUSTAIN_DIFF_STEPS", "30"))
PHASES = (
    list(Phase)
    if os.environ.get("SUSTAIN_DIFF_SHRINK") == "1"
    else [Phase.explicit, Phase.reuse, Phase.generate]
)
MUST_SUCCEED = sorted(KINDS | {"debug.tick", "debug.snap", "debug.reset"})

Step = tuple[str, dict[str, Any], int, int | None]


class Backend:
    """The engine on one store, called in-process the way the server calls it."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.engine = Engine(EngineConfig(retry_timeout=RETRY, debug=True))
        self.last: Any = None

    def apply(
        self, kind: str, data: dict[str, Any], now: int, debug_time: int | None
    ) -> tuple[int, Any]:
        def op(tx: Any) -> Any:
            return self.engine.apply(tx, kind, data, now, "c", debug_time=debug_time)

        outcome = self.store.run(op)
        self.last = outcome  # its wake_outbox and deadline hints, checked by _check_hints
        return outcome.status, msgspec.to_builtins(outcome.data)


@pytest.fixture(scope="module")
def memory_backend() -> Iterator[Backend]:
    store = MemoryStore()
    yield Backend(store)
    store.close()


@pytest.fixture(scope="module")
def sqlite_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    # NORMAL: one fsync per WAL checkpoint, not per step; durability is not the topic here.
    store = SqliteStore(str(tmp_path_factory.mktemp("diff") / "x.db"), synchronous="NORMAL")
    yield Backend(store)
    store.close()


@pytest.fixture(scope="module")
def postgres_backend() -> Iterator[Backend]:
    from sustain.store.postgres import PostgresStore
    from tests.store.postgres_db import temp_database

    with temp_database() as url:
        store = PostgresStore(url, pool_size=1)
        yield Backend(store)
        store.close()


def _show(steps: list[Step]) -> str:
    lines = []
    for i, (kind, data, now, debug_time) in enumerate(steps):
        dt = "" if debug_time == now else f" debug_time={debug_time}"
        lines.append(f"  {i:3d} t+{now - T0:>7d}{dt} {kind} {json.dumps(data, sort_keys=True)}")
    return "\n".join(lines)


def _diff(expected: Any, got: Any) -> str:
    a = json.dumps(expected, indent=1, sort_keys=True).splitlines()
    b = json.dumps(got, indent=1, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "model (expected)", "engine (got)", lineterm=""))


def _check(what: str, expected: Any, got: Any, steps: list[Step]) -> None:
    if expected != got:
        raise AssertionError(
            f"{what} differs after step {len(steps) - 1}\nsteps:\n{_show(steps)}\n"
            f"{_diff(expected, got)}"
        )


# Situations (read off the snapshots) and spec rules (the model's ``events``) that the random
# sequences must reach on every backend; the rarest rules have directed scenarios instead
# (test_differential_scenarios.py).
FEATURES = frozenset(
    {
        "unblock message",
        "execute after acquire",
        "ready callback",
        "suspended task",
        "halted task",
        "lease timeout",
        "retry timeout",
        "timed out promise",
        "scheduled promise",
        "delayed task",
        "callback",
        "listener",
        "preload",
        "suspend 300",
        "inner 404",
        "event: try_timeout",
        "event: tick: promise timeout",
        "event: tick: retry",
        "event: tick: lease expired",
        "event: tick: schedule fired",
        "event: tick: schedule catch-up",
        "event: born settled",
        "event: listener unblocked",
        "event: suspended",
        "event: fence promise.settle",
        "event: heartbeat extended",
        "event: register_callback ready",
        "event: halt pending",
        "event: halt acquired",
        "event: schedule promise born settled",
        "event: schedule promise exists",
    }
)


def _features(snap: dict[str, Any], kind: str, answer: tuple[int, Any]) -> set[str]:
    """The interesting situations a step reached, read off the model's snapshot and answer."""
    found: set[str] = set()
    messages = snap["messages"]
    executes = {
        m["message"]["data"]["task"]["id"] for m in messages if m["message"]["kind"] == "execute"
    }
    if any(m["message"]["kind"] == "unblock" for m in messages):
        found.add("unblock message")
    if any(m["message"]["data"].get("task", {}).get("version", 0) > 0 for m in messages):
        found.add("execute after acquire")
    for t in snap["tasks"]:
        if t["resumes"] > 0:
            found.add("ready callback")
        if t["state"] in ("suspended", "halted"):
            found.add(f"{t['state']} task")
        if t["state"] == "pending" and t["id"] not in executes:
            found.add("delayed task")
    found |= {("retry timeout", "lease timeout")[t["type"]] for t in snap["taskTimeouts"]}
    for p in snap["promises"]:
        if p["state"] == "rejected_timedout":
            found.add("timed out promise")
        if "resonate:schedule" in p["tags"]:
            found.add("scheduled promise")
    if snap["callbacks"]:
        found.add("callback")
    if snap["listeners"]:
        found.add("listener")
    status, data = answer
    if isinstance(data, dict) and data.get("preload"):
        found.add("preload")
    if status == 300:
        found.add("suspend 300")
    if kind == "task.fence" and status == 200 and data["action"]["head"]["status"] == 404:
        found.add("inner 404")
    return found


def _timers_and_outbox(m: ReferenceModel) -> tuple[dict[tuple[str, str], int], Any]:
    """Every timer of the model (promise timeouts, task timeouts, schedule runs) and its
    outbox, to tell what an operation created or moved."""
    timers = {
        ("promise", p.id): p.timeout_at
        for p in m.promises.values()
        if p.pending and p.target is not None
    }
    timers |= {("task", t.id): t.timeout[1] for t in m.tasks.values() if t.timeout is not None}
    timers |= {("schedule", s["id"]): s["nextRunAt"] for s in m.schedules.values()}
    return timers, (dict(m.executes), set(m.unblocks))


def _check_hints(before: Any, after: Any, outcome: Any, steps: list[Step]) -> None:
    """The server's loops rely on the Outcome's hints: a timer created or moved must be
    reported (``deadline`` at or before it) and a write to the outbox must ring
    ``wake_outbox``.  Extra hints only cost a spurious wake-up, so they are allowed."""
    moved = [at for key, at in after[0].items() if before[0].get(key) != at]
    if moved and (outcome.deadline is None or outcome.deadline > min(moved)):
        raise AssertionError(
            f"Outcome.deadline is {outcome.deadline}, but step {len(steps) - 1} set a timer at "
            f"{min(moved)}\nsteps:\n{_show(steps)}"
        )
    if after[1] != before[1] and not outcome.wake_outbox:
        raise AssertionError(
            f"step {len(steps) - 1} wrote to the outbox without wake_outbox\nsteps:\n{_show(steps)}"
        )


def _draw_step(draw: Callable[[Any], Any], model: ReferenceModel, now: int) -> Step:
    """One request: mostly an operation from the weighted table, sometimes time or debug."""
    roll = draw(st.integers(0, 99))  # 0 (hypothesis' favourite) is an ordinary operation
    if roll >= 86:  # time passes and the timers run
        time = now + draw(st.integers(0, 50)) * 1000
        if chance(draw, 0.03):  # a long pause: many schedule occurrences to catch up
            time += 600_000
        debug_time: int | None = time
        if chance(draw, 0.03):
            debug_time = time + 1  # must be refused
        data: dict[str, Any] = {"time": time}
        if chance(draw, 0.02):
            data = pick(draw, [{}, {"time": "soon"}, {"time": 1.5}])
        return "debug.tick", data, time, debug_time
    if roll >= 84:
        return pick(draw, ["debug.snap", "debug.start", "debug.stop", "debug.reset"]), {}, now, now
    if roll >= 83:
        return pick(draw, ["promise.nope", "debug.nope"]), {}, now, now
    kind = choose_kind(draw, model)
    data = GENERATORS[kind][1](draw, model, now)
    if chance(draw, 0.06):
        data = mutate(draw, data)
    return kind, data, now, now


def _run_sequence(
    backend: Backend,
    draw: Callable[[Any], Any],
    seen: set[tuple[str, int]],
    reached: set[str],
) -> None:
    model = ReferenceModel(retry_timeout=RETRY)
    backend.apply("debug.reset", {}, T0, T0)
    steps: list[Step] = []
    now = T0
    for _ in range(STEPS):
        if chance(draw, 0.3):  # time also moves between ordinary requests
            now += draw(st.integers(0, 50)) * 1000
        kind, data, now, debug_time = _draw_step(draw, model, now)
        steps.append((kind, data, now, debug_time))
        note(f"step {len(steps) - 1}: t+{now - T0} {kind} {json.dumps(data, sort_keys=True)}")
        before = _timers_and_outbox(model)
        expected = model.apply(kind, copy.deepcopy(data), now, debug_time)
        got = backend.apply(kind, copy.deepcopy(data), now, debug_time)
        _check(f"answer to {kind}", expected, got, steps)
        if not kind.startswith("debug."):
            _check_hints(before, _timers_and_outbox(model), backend.last, steps)
        seen.add((kind, expected[0]))
        snap = model.apply("debug.snap", {}, now, now)
        _check("debug.snap", snap, backend.apply("debug.snap", {}, now, now), steps)
        reached.update(_features(snap[1], kind, expected))
    reached.update(f"event: {e}" for e in model.events)


def _differential(backend: Backend) -> None:
    seen: set[tuple[str, int]] = set()
    reached: set[str] = set()
    fixed = os.environ.get("SUSTAIN_DIFF_RANDOM") != "1"

    def batch(examples: int, number: int) -> None:
        @settings(
            max_examples=examples,
            deadline=None,
            derandomize=False,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.large_base_example,
            ],
            database=None,
            report_multiple_bugs=False,
            # Shrinking a 30-step sequence can take minutes (past the suite's timeout); the
            # failure already prints every step and the first difference.
            # SUSTAIN_DIFF_SHRINK=1 shrinks.
            phases=PHASES,
        )
        @given(st.data())
        def run(data: st.DataObject) -> None:
            _run_sequence(backend, data.draw, seen, reached)

        # A fixed seed per batch: the same sequences on every run (SUSTAIN_DIFF_RANDOM=1 for
        # new ones).  Fixed seeds rather than ``derandomize``: that one was seen to reach the
        # rarest features or not depending on what the process had imported before.
        (seed(number)(run) if fixed else run)()

    def missing_kinds() -> list[str]:
        return [k for k in MUST_SUCCEED if not any(s == k and 200 <= c < 300 for s, c in seen)]

    # Every kind and feature must be reached, not by one lucky seed: a short extra batch (a
    # new seed) runs only while something is still missing, at most twice.
    batch(EXAMPLES, 0)
    for number in (1, 2):
        if reached >= FEATURES and not missing_kinds():
            break
        batch(max(EXAMPLES // 2, 1), number)
    missing = missing_kinds()
    assert not missing, f"no 2xx answer was ever produced for: {missing}"
    assert reached >= FEATURES, f"never reached: {sorted(FEATURES - reached)}"


def test_engine_on_memory_store_matches_the_reference_model(memory_backend: Backend) -> None:
    _differential(memory_backend)


def test_engine_on_sqlite_store_matches_the_reference_model(sqlite_backend: Backend) -> None:
    _differential(sqlite_backend)


def test_engine_on_postgres_store_matches_the_reference_model(postgres_backend: Backend) -> None:
    _differential(postgres_backend)
