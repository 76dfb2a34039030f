"""``sustain check APP --against URL|FILE``: would the code of APP replay every pending
execution?  Run it in CI before a deploy; it exits 1 when one would not.

APP is loaded as ``sustain worker`` loads it (``module:attr``; the app is never started: it
connects nowhere and runs nothing).  The pending executions are the pending promises that
run a function (an invocation in their param: roots and rpc calls; not steps, sleeps or
promises for others to settle), paged through ``promise.search`` from the server at URL or
the SQLite file FILE (sources.py), up to ``--limit``.  Each one's history (``tree.execution``,
what ``sustain export`` prints) is replayed with the function APP registers under the
recorded name and version, running no leaf (sdk/history_replay.py).  An execution is:

* ``ok``: the new code makes the recorded calls, up to where the execution stands;
* ``DIVERGES``: the first step where it calls something else (``NondeterminismError``);
* ``FAILS``: the workflow itself raises on the recorded results (a changed signature, a
  step's value it no longer reads), so its promise would be rejected;
* ``MISSING``: APP's group serves the execution but APP no longer registers its function;
* ``skipped``: another group's function (not APP's to run).

Exit status: 0 when none diverges, fails or is missing; 1 otherwise (the last line says how
many); 3 when the server cannot be reached.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import click

from sustain.cli.errors import CliError
from sustain.cli.session import Session, json_option, pass_session
from sustain.cli.sources import Requester, open_source, search
from sustain.cli.tree import execution
from sustain.cli.worker import load
from sustain.errors import FunctionNotFoundError, NondeterminismError, SustainError
from sustain.protocol import callgraph
from sustain.protocol.history import History
from sustain.sdk import codec, network
from sustain.sdk.history_replay import app_parts, replay_history, run
from sustain.sdk.registry import Registry

PAGE = 100
FAILING = ("DIVERGES", "FAILS", "MISSING")


@dataclass
class Verdict:
    id: str
    func: str
    result: str  # ok, DIVERGES, FAILS, MISSING, skipped
    detail: str
    step: int | None = None
    recorded: str | None = None
    found: str | None = None


def pending_executions(source: Requester, limit: int | None) -> list[dict[str, Any]]:
    """The pending promises that run a function, oldest page first, at most ``limit``."""
    found: list[dict[str, Any]] = []
    data: dict[str, Any] = {"state": "pending", "limit": PAGE}
    for promise in search(source, "promise.search", data, "promises"):
        if isinstance(promise, dict) and _runs_a_function(promise):
            found.append(promise)
            if limit is not None and len(found) >= limit:
                break
    return found


def _runs_a_function(promise: dict[str, Any]) -> bool:
    node = callgraph.CallNode(promise)
    tags = node.tags
    if tags.get("resonate:scope") == "local" or callgraph.link_of(promise) is not None:
        return False
    return not node.is_sleep and tags.get("resonate:external") != "true" and node.func is not None


def _serves(group: str, promise: dict[str, Any]) -> bool:
    """Whether ``group``'s workers receive this execution (its target names the group)."""
    target = callgraph.CallNode(promise).tags.get("resonate:target")
    if not isinstance(target, str):
        return True  # no target: whoever holds the task runs it
    anycast = network.anycast(group)
    return target == anycast or target.startswith(anycast + "/")


def judge(
    source: Requester, promise: dict[str, Any], registry: Registry, group: str, deps: dict[str, Any]
) -> Verdict:
    id = str(promise["id"])
    try:
        inv = codec.decode_invocation(promise.get("param"), id)
    except SustainError as exc:
        return Verdict(id, "?", "FAILS", str(exc))
    func = f"{inv.func} v{inv.version}"
    try:
        function = registry.get(inv.func, inv.version)
    except FunctionNotFoundError:
        if _serves(group, promise):
            return Verdict(id, func, "MISSING", f"{func} is not registered in this app")
        return Verdict(id, func, "skipped", "another group's function")
    root, promises = execution(source, id)
    history = History(root, {str(p["id"]): p for p in [*promises, root]})
    try:
        report = run(replay_history(history, registry, function, group=group, dependencies=deps))
    except NondeterminismError as exc:
        detail = f"step {exc.step}: recorded {exc.recorded!r}, now calls {exc.found!r}"
        return Verdict(id, func, "DIVERGES", detail, exc.step, exc.recorded, exc.found)
    except Exception as exc:  # the replay itself could not run this history
        return Verdict(id, func, "FAILS", f"{type(exc).__name__}: {exc}")
    if report.status == "failed" and report.error is not None:
        error = report.error
        return Verdict(id, func, "FAILS", f"the workflow raises {type(error).__name__}: {error}")
    where = "completes" if report.status == "completed" else "waits there"
    if report.status == "not-run":
        return Verdict(id, func, "ok", "a leaf, or no step recorded yet: nothing to replay")
    steps = f"{report.steps} recorded step" + ("" if report.steps == 1 else "s")
    return Verdict(id, func, "ok", f"replays {steps}, then {where}")


@click.command("check")
@click.argument("app")
@click.option("--against", required=True, help="A server URL (http://...) or a SQLite file.")
@click.option("--limit", type=click.IntRange(1), help="Check at most N pending executions.")
@json_option
@pass_session
def check(session: Session, app: str, against: str, limit: int | None) -> None:
    """Replay the pending executions of a server against the code of APP (module:attr).

    No leaf runs and nothing is written.  Each execution is listed as ok, DIVERGES (with
    the first step whose call differs from the recorded one), FAILS, MISSING (its function
    is gone from APP) or skipped (another group's).  Exits 1 if any would not replay, so a
    CI job can stop the deploy.
    """
    registry, deps, group = app_parts(load(app))
    source = open_source(session, against)
    try:
        verdicts = [
            judge(source, promise, registry, group, deps)
            for promise in pending_executions(source, limit)
        ]
    finally:
        source.close()
    session.show([asdict(v) for v in verdicts], lambda _: _render(verdicts))
    bad = [v for v in verdicts if v.result in FAILING]
    if bad:
        raise CliError(
            f"{len(bad)} of {len(verdicts)} pending executions would not replay with {app}"
        )


def _render(verdicts: list[Verdict]) -> None:
    for v in verdicts:
        click.echo(f"{v.result:<8} {v.id} ({v.func}): {v.detail}")
    if not verdicts:
        click.echo("no pending executions")
    else:
        click.echo(f"checked {len(verdicts)} pending executions")
