"""Infinite chess as a serverless function: the server pushes each task to this ASGI app.

Each push replays the game from the top: checkpointed moves return at once and rebuild the
board, the next move is computed and published, and the durable sleep suspends the task, so
the invocation answers and no process waits out the sleep.  When the timer fires the server
pushes the game again.  A player that fails (the fake LLM's first answer is illegal) is
retried in place by the step's retry policy.  A finished game starts the next one with
``ctx.detached``: a new root, so a replay never reads more than the current game.

    uvicorn examples.chess.app:app --port 8080         # the function (Cloud Run stand-in)
    sustain invoke chess -f chess_game --target http://127.0.0.1:8080/

Settings (environment): SUSTAIN_URL (http://127.0.0.1:8001), CHESS_MOVE_DELAY (10 s),
CHESS_GAMES (0: play forever), CHESS_TTL (60 s lease), CHESS_JOURNAL (a file for the board
and the players' calls; default stdout) and CHESS_HANG_AT_PLY (a test hook: that move hangs).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from sustain import Context, Sustain
from sustain.integrations import asgi

MOVE_DELAY = float(os.environ.get("CHESS_MOVE_DELAY", "10"))
GAMES = int(os.environ.get("CHESS_GAMES", "0"))
HANG_AT_PLY = int(os.environ.get("CHESS_HANG_AT_PLY", "0"))

# The players are deterministic fakes: a scripted game that ends in checkmate at ply 6.
WHITE = ["a3", "f3", "g4"]
BLACK = ["e5", "d6", "Qh4#"]


class Journal:
    """The publish sink (Firestore in the original): one JSON line per write."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def write(self, **entry: Any) -> None:
        line = json.dumps(entry)
        if self.path is None:
            print(line, flush=True)
        else:
            with open(self.path, "a") as out:
                out.write(line + "\n")


journal = Journal(os.environ.get("CHESS_JOURNAL"))


class IllegalMove(Exception):
    pass


def think(ctx: Context, script: list[str], game: int, moves: list[str]) -> dict[str, Any]:
    ply = len(moves) + 1
    journal.write(event="think", game=game, ply=ply, attempt=ctx.info.attempt)  # call counter
    if ply == HANG_AT_PLY:
        time.sleep(3600)  # a move still executing when the function is killed
    return {"san": script[len(moves) // 2], "over": ply == len(WHITE) + len(BLACK)}


def white(ctx: Context, game: int, moves: list[str]) -> dict[str, Any]:
    return think(ctx, WHITE, game, moves)  # a chess engine in the original


def black(ctx: Context, game: int, moves: list[str]) -> dict[str, Any]:
    move = think(ctx, BLACK, game, moves)  # an LLM in the original, and LLMs err: its first
    if len(moves) == 1 and ctx.info.attempt == 1:  # answer in each game is illegal, and the
        raise IllegalMove("Ke7 is not a legal move")  # step is retried (after 1 s by default)
    return move


def publish(ctx: Context, game: int, moves: list[str], result: str | None = None) -> None:
    ctx.get_dependency("board").write(event="board", game=game, moves=moves, result=result)


sustain = Sustain(
    url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
    ttl=float(os.environ.get("CHESS_TTL", "60")),
)
sustain.set_dependency("board", journal)


@sustain.register
def chess_game(ctx: Context, game: int = 1):
    moves: list[str] = []  # the board, rebuilt from checkpointed moves on every replay
    while True:
        player = white if len(moves) % 2 == 0 else black
        move = yield ctx.run(player, game, moves)
        moves.append(move["san"])
        yield ctx.run(publish, game, moves)
        if move["over"]:
            break
        yield ctx.sleep(MOVE_DELAY)
    result = "0-1 checkmate"
    yield ctx.run(publish, game, moves, result)
    if game != GAMES:
        yield ctx.detached(chess_game, game + 1)  # the next game: a new root, a fresh replay
    return {"game": game, "moves": moves, "result": result}


app = asgi.app(sustain)
