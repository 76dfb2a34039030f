"""``sustain retry ID``: run a failed execution again, its resolved children taken over.

One ``sustain.retry`` request (engine/retry.py): the server copies what resolved in the
failed run under the new id and starts it, in one transaction.  ``--from-step N`` takes over
only the steps before N (DBOS's fork); ``--id`` names the new execution (default
``ID~retry-<n>``); ``--wait`` follows it like ``sustain invoke --wait``.  A pending or
resolved execution is refused: one line on stderr, exit 1.
"""

from __future__ import annotations

from typing import Any

import click

from sustain.cli import invocation, output, waiting
from sustain.cli.invoke import recorded_call
from sustain.cli.session import Session, json_option, pass_session


@click.command("retry")
@click.argument("id")
@click.option(
    "--from-step",
    type=click.IntRange(min=1),
    help="Run again from this step (1 = everything); the steps before it are taken over.",
)
@click.option("--id", "new_id", help="The new execution's id (default: ID~retry-<n>).")
@click.option("--wait", is_flag=True, help="Wait for the result and print it; exit 1 if it fails.")
@json_option
@pass_session
def retry(session: Session, id: str, from_step: int | None, new_id: str | None, wait: bool) -> None:
    """Run the failed execution ID again, without re-running what resolved in it.

    \b
    Examples:
      sustain retry order-42
      sustain retry order-42 --from-step 3 --wait

    ID must have failed (rejected, timed out or canceled).  Every call of it that resolved
    is copied under the new execution's id, so its replay skips them; with --from-step N
    only those of the steps before N.  The new execution is tagged sustain:retry-of=ID.
    A pending or resolved ID is refused (exit 1).
    """
    data: dict[str, Any] = {"id": id}
    if new_id is not None:
        data["newId"] = new_id
    if from_step is not None:
        data["fromStep"] = from_step
    answer = session.request("sustain.retry", data)
    if not wait:
        session.show(answer, output.retry_report)
        return
    promise = answer.get("promise") or {}
    func = str((recorded_call(promise) or {}).get("func", "?"))
    group = invocation.group_of(str((promise.get("tags") or {}).get("resonate:target", "")))
    if not session.as_json:
        output.retry_report(answer)
    settled = waiting.until_settled(session, str(promise.get("id")), func, group)
    session.show({"promise": settled}, output.result)
    waiting.fail_unless_resolved(settled)
