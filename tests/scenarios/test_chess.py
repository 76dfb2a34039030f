"""Scenario 3 (SCENARIOS.md §3): infinite chess as a serverless function reached by HTTP push.

A real ``sustain serve`` pushes every task of ``examples/chess`` to the example's ASGI app,
served by uvicorn on 127.0.0.1 (the Cloud Run stand-in; ``push_recorder`` records each
answered push from outside the app).  Shortened by configuration only: the example's
``CHESS_MOVE_DELAY`` (1 s instead of 10), ``CHESS_TTL`` (its lease), ``CHESS_GAMES=2`` (stop
after the second game) and the server's ``--retry-timeout``.  The journal file counts the fake
players' calls and the board writes.  Game 1 is SIGKILLed while its third move executes
(``CHESS_HANG_AT_PLY``), game 2 while it sleeps.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

from sustain import Sustain
from tests.integrations.push_recorder import read
from tests.scenarios.processes import Proc, Store, scenario_server, wait_until
from tests.servers import ServerProcess, free_port

APP = "examples.chess.app:app"
SCRIPT = ["a3", "e5", "f3", "d6", "g4", "Qh4#"]  # the fake players' game
PLIES = len(SCRIPT)
CRASH_PLY = 3


def journal(path: Path, event: str, game: int) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [e for e in lines if e["event"] == event and e["game"] == game]


def thinks(path: Path, game: int) -> dict[int, int]:
    """How many times the fake players computed each ply of ``game``."""
    counts: dict[int, int] = {}
    for entry in journal(path, "think", game):
        counts[entry["ply"]] = counts.get(entry["ply"], 0) + 1
    return counts


def function(tmp: Path, port: int, record: Path, env: dict[str, str], name: str) -> Proc:
    """The function process: uvicorn serving the example app on ``port``, ready."""
    args = ["-m", "tests.integrations.push_recorder", APP, str(port), str(record)]
    proc = Proc(args, tmp / f"function-{name}.log", env)

    def up() -> bool:
        assert proc.alive(), proc.output()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, 60, f"function {name}")
    return proc


def promise(server: ServerProcess, id: str) -> dict[str, Any]:
    record: dict[str, Any] = server.ok("promise.get", {"id": id})["promise"]
    return record


def test_chess_games_run_by_push_survive_kills_and_rerooting(tmp_path: Path, store: Store) -> None:
    server = scenario_server(tmp_path, "--retry-timeout", "1000", store=store)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log, record = tmp_path / "journal.jsonl", tmp_path / "pushes.jsonl"
    env = {"SUSTAIN_URL": server.url, "CHESS_MOVE_DELAY": "1", "CHESS_GAMES": "2",
           "CHESS_TTL": "3", "CHESS_JOURNAL": str(log)}  # fmt: skip
    client = Sustain(url=server.url, group="chess-client")
    try:
        first = function(tmp_path, port, record, {**env, "CHESS_HANG_AT_PLY": str(CRASH_PLY)}, "a")
        game1 = client.options(target=url).rpc("chess", "chess_game")

        # Crash: SIGKILL the function while move 3 executes; a new one on the same port gets
        # the server's push once the lease lapses.
        wait_until(lambda: thinks(log, 1).get(CRASH_PLY) == 1, 60, "move 3 executing")
        first.kill9()
        second = function(tmp_path, port, record, env, "b")
        assert game1.result(timeout=90)["moves"] == SCRIPT
        # each move computed once, the crashed one once more; ply 2's first answer is illegal
        # and that step is retried in place (the fake LLM errs once per game)
        assert thinks(log, 1) == {1: 1, 2: 2, CRASH_PLY: 2, 4: 1, 5: 1, 6: 1}
        assert [e["attempt"] for e in journal(log, "think", 1) if e["ply"] == 2] == [1, 2]
        boards = journal(log, "board", 1)
        assert [b["moves"] for b in boards] == [SCRIPT[:n] for n in range(1, PLIES + 1)] + [
            SCRIPT
        ]  # exactly 6 move states and 1 final state
        assert [b["result"] for b in boards].count("0-1 checkmate") == 1
        # the server pushed the crashed game again to the new process once the lease lapsed
        repushed = [r["body"]["outcome"] for r in read(record)
                    if r["body"].get("task") == "chess" and r["pid"] == second.pid
                    and r["body"]["outcome"] != "stale"]  # fmt: skip
        assert repushed[:1] == ["suspended"], repushed

        # Re-rooting: game 2 is a new root minted by ctx.detached, pushed to the same function.
        games = server.ok("promise.search", {"tags": {"resonate:origin": "chess"}, "limit": 1000})
        roots = [p for p in games["promises"] if re.fullmatch(r"chess:d[0-9a-f]{16}", p["id"])]
        assert len(roots) == 1, [p["id"] for p in games["promises"]]
        game2 = roots[0]["id"]
        assert roots[0]["tags"]["resonate:branch"] == game2  # a lineage of its own
        assert roots[0]["tags"]["resonate:target"] == url
        assert promise(server, "chess")["state"] == "resolved"

        # Kill the function while game 2 sleeps: nothing was running, the timer re-invokes.
        def suspended_pushes() -> list[dict[str, Any]]:
            return [r for r in read(record) if r["body"].get("task") == game2
                    and r["body"]["outcome"] == "suspended"]  # fmt: skip

        wait_until(lambda: len(suspended_pushes()) >= 2, 60, "game 2 sleeping")
        second.kill9()
        third = function(tmp_path, port, record, env, "c")
        wait_until(lambda: promise(server, game2)["state"] != "pending", 60, "game 2 to end")
        assert promise(server, game2)["state"] == "resolved"
        assert thinks(log, 2) == {1: 1, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1}
        boards2 = journal(log, "board", 2)
        assert len(boards2) == PLIES + 1
        assert boards2[-1]["moves"] == boards[-1]["moves"]  # the same board as after a crash
        third.stop()

        # About one push per sleep for game 2, each answered promptly, each replaying game 2
        # only: its preload never holds more than game 2's own checkpoints.
        pushes = [r for r in read(record) if r["body"].get("task") == game2
                  and r["body"]["outcome"] in ("suspended", "fulfilled")]  # fmt: skip
        assert PLIES // 2 <= len(pushes) <= PLIES, pushes
        assert [r["body"]["outcome"] for r in pushes][-1] == "fulfilled"
        assert all(r["status"] == 200 and r["seconds"] < 5 for r in pushes), pushes
        assert max(r["body"]["preload"] for r in pushes) <= 2 * PLIES + 1
        branch = server.ok("promise.search", {"tags": {"resonate:branch": game2}, "limit": 100})
        ids = [p["id"] for p in branch["promises"]]
        assert all(i.startswith(game2) for i in ids)
        assert len(ids) == 2 * PLIES + 2  # root, a move and a board write per ply, the result
        assert all(r["status"] == 200 for r in read(record)), read(record)
        assert thinks(log, 1) == {1: 1, 2: 2, CRASH_PLY: 2, 4: 1, 5: 1, 6: 1}  # untouched
        assert journal(log, "board", 1) == boards
    finally:
        client.stop()
        server.stop()
