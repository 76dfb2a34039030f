"""Everything the CLI prints, in one place.

Human output uses rich (tables for records and lists, a tree for ``sustain tree``); ``--json``
prints the server's answer data unchanged (``raw_json``); errors are one line on stderr
(``error``), and so are warnings and notes.  On a terminal rich uses its width and colours;
piped, nothing is cut at 80 columns (``COLUMNS`` still sets a width when given).  The SDKs'
own ``resonate:*`` tags are hidden unless ``--all-tags`` (``settings.all_tags``).
Renderers take the answer's ``data`` as the protocol shapes it (PROTOCOL.md §2) and never
fail on a missing field: a server of another version must not crash the CLI.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sustain.cli.durations import format_duration
from sustain.protocol.values import decode_data

# Ids, tags and values are user data: never read them as rich markup ("[red]") or emoji
# codes (":x:"), or a promise id could vanish or crash the printer.
console = Console(
    highlight=False,
    soft_wrap=False,
    markup=False,
    emoji=False,
    # A pipe or a file has no width: rich would assume 80 and cut ids and tags.
    width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 100_000,
)


@dataclass
class Settings:
    all_tags: bool = False


settings = Settings()
INTERNAL_TAG = "resonate:"

STATE_STYLE = {
    "pending": "yellow",
    "resolved": "green",
    "rejected": "red",
    "rejected_canceled": "magenta",
    "rejected_timedout": "red",
    "acquired": "cyan",
    "suspended": "blue",
    "halted": "magenta",
    "fulfilled": "green",
}
_DATA_LIMIT = 200


def error(message: str) -> None:
    """``Error: <message>`` as exactly one line on stderr."""
    one_line = " ".join(str(message).split())
    click.echo(f"Error: {one_line}", err=True)


def warning(message: str) -> None:
    click.echo("Warning: " + " ".join(str(message).split()), err=True)


def note(message: str) -> None:
    click.echo("Note: " + " ".join(str(message).split()), err=True)


def raw_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def done(message: str) -> None:
    console.print(message)


# -- small formatters -------------------------------------------------------------------------


def fmt_time(ms: object) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "-"
    try:
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _state(state: object) -> Text:
    text = str(state) if state is not None else "-"
    return Text(text, style=STATE_STYLE.get(text, ""))


def _tags(tags: object, *, count_hidden: bool = False) -> str:
    if not isinstance(tags, dict) or not tags:
        return ""
    shown = sorted(
        (k, v) for k, v in tags.items() if settings.all_tags or not k.startswith(INTERNAL_TAG)
    )
    lines = [f"{k}={v}" for k, v in shown]
    hidden = len(tags) - len(shown)
    if hidden and count_hidden:
        lines.append(f"({hidden} {INTERNAL_TAG}* hidden; --all-tags shows them)")
    return "\n".join(lines)


def _value(value: object) -> str:
    """A ``{headers?, data?}`` value with its data decoded from base64 when possible."""
    if not isinstance(value, dict) or not value:
        return ""
    lines: list[str] = []
    headers = value.get("headers")
    if isinstance(headers, dict) and headers:
        lines.append("headers: " + ", ".join(f"{k}={v}" for k, v in sorted(headers.items())))
    if "data" in value:
        decoded = decode_data(value["data"])
        shown = decoded if decoded is not None else f"(raw) {value['data']}"
        if len(shown) > _DATA_LIMIT:
            shown = shown[:_DATA_LIMIT] + "…"
        lines.append(shown)
    return "\n".join(lines)


def _record(title: str, rows: list[tuple[str, str | Text]]) -> None:
    table = Table(title=title, show_header=False, title_justify="left", box=None, padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, cell in rows:
        if cell != "":
            table.add_row(name, cell)
    console.print(table)


def _list(columns: list[str], rows: list[list[str | Text]], cursor: object, noun: str) -> None:
    if not rows:
        console.print(f"No {noun}.")
    else:
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for column in columns:
            # a narrow terminal folds a cell onto more lines rather than cutting an id
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    if isinstance(cursor, str):
        console.print(f"Next page: --cursor {cursor}  (or --all for every page)")


def _dict(data: Any, key: str) -> dict[str, Any]:
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _items(data: Any, key: str) -> list[dict[str, Any]]:
    value = data.get(key) if isinstance(data, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- promises ---------------------------------------------------------------------------------


def promise_record(p: dict[str, Any]) -> None:
    _record(
        f"Promise {p.get('id', '?')}",
        [
            ("state", _state(p.get("state"))),
            ("timeout", fmt_time(p.get("timeoutAt"))),
            ("created", fmt_time(p.get("createdAt"))),
            ("settled", fmt_time(p.get("settledAt")) if "settledAt" in p else ""),
            ("tags", _tags(p.get("tags"), count_hidden=True)),
            ("param", _value(p.get("param"))),
            ("value", _value(p.get("value"))),
        ],
    )


def promise_answer(data: Any) -> None:
    promise_record(_dict(data, "promise"))
    record = _dict(data, "status")
    if record:
        status_record(record)


def status_record(r: dict[str, Any]) -> None:
    """A promise's status record (protocol/status.py): its failures, or why it is paused."""
    trace = r.get("traceback")
    _record(
        "Status (sustain.status: the SDK's record of its failures)",
        [
            ("attempts", str(r.get("attempts", "-"))),
            ("paused", str(r.get("paused") or "")),
            ("last error", f"{r['errorType']}: {r.get('message', '')}" if "errorType" in r else ""),
            ("next retry", fmt_time(r.get("nextRetryAt")) if "nextRetryAt" in r else ""),
            ("updated", fmt_time(r.get("updatedAt"))),
            ("traceback", str(trace).rstrip() if trace else ""),
        ],
    )


def promise_rows(promises: list[dict[str, Any]]) -> list[list[str | Text]]:
    return [
        [
            str(p.get("id", "")),
            _state(p.get("state")),
            fmt_time(p.get("timeoutAt")),
            fmt_time(p.get("createdAt")),
            _tags(p.get("tags")),
        ]
        for p in promises
    ]


PROMISE_COLUMNS = ["id", "state", "timeout", "created", "tags"]


def promise_list(data: Any) -> None:
    rows = promise_rows(_items(data, "promises"))
    _list(PROMISE_COLUMNS, rows, _cursor(data), "promises")


def _cursor(data: Any) -> object:
    return data.get("cursor") if isinstance(data, dict) else None


# -- tasks ------------------------------------------------------------------------------------


def task_record(t: dict[str, Any]) -> None:
    _record(
        f"Task {t.get('id', '?')}",
        [
            ("state", _state(t.get("state"))),
            ("version", str(t.get("version", "-"))),
            ("resumes", str(t.get("resumes", "-"))),
            ("pid", str(t["pid"]) if "pid" in t else ""),
            ("ttl", format_duration(t["ttl"]) if isinstance(t.get("ttl"), int) else ""),
        ],
    )


def task_answer(data: Any) -> None:
    """``{task}``, or ``{task, promise, preload}`` after create/claim."""
    task_record(_dict(data, "task"))
    if isinstance(data, dict) and isinstance(data.get("promise"), dict):
        promise_record(data["promise"])
    if isinstance(data, dict) and "preload" in data:
        preload_list(data)


def task_list(data: Any) -> None:
    rows: list[list[str | Text]] = [
        [
            str(t.get("id", "")),
            _state(t.get("state")),
            str(t.get("version", "")),
            str(t.get("resumes", "")),
            str(t.get("pid", "")),
        ]
        for t in _items(data, "tasks")
    ]
    _list(["id", "state", "version", "resumes", "pid"], rows, _cursor(data), "tasks")


def preload_list(data: Any) -> None:
    preload = _items(data, "preload")
    if preload:
        console.print("Preload:")
        _list(PROMISE_COLUMNS, promise_rows(preload), None, "promises")
    else:
        console.print("Preload: none")


def suspended(data: Any) -> None:
    console.print("Task suspended.")


def resume_now(data: Any) -> None:
    """``task.suspend`` answered 300: an awaited promise is already settled."""
    console.print("Not suspended: an awaited promise is already settled; continue with:")
    preload_list(data)


def fence_answer(data: Any) -> None:
    inner = _dict(data, "action")
    head = _dict(inner, "head")
    status = head.get("status")
    inner_data = inner.get("data")
    if isinstance(inner_data, dict) and isinstance(inner_data.get("promise"), dict):
        promise_record(inner_data["promise"])
    else:
        console.print(f"{inner.get('kind', 'action')}: {status} {inner_data}")
    preload_list(data)


# -- schedules --------------------------------------------------------------------------------


def schedule_record(s: dict[str, Any]) -> None:
    timeout = s.get("promiseTimeout")
    _record(
        f"Schedule {s.get('id', '?')}",
        [
            ("cron", str(s.get("cron", "-"))),
            ("promise id", str(s.get("promiseId", "-"))),
            ("promise timeout", format_duration(timeout) if isinstance(timeout, int) else "-"),
            ("target", str(_dict(s, "promiseTags").get("resonate:target", ""))),
            # the target has its own row: the count of hidden tags leaves it out
            (
                "promise tags",
                _tags(
                    {k: v for k, v in _dict(s, "promiseTags").items() if k != "resonate:target"},
                    count_hidden=True,
                ),
            ),
            ("promise param", _value(s.get("promiseParam"))),
            ("created", fmt_time(s.get("createdAt"))),
            ("next run", fmt_time(s.get("nextRunAt"))),
            ("last run", fmt_time(s.get("lastRunAt")) if "lastRunAt" in s else ""),
        ],
    )


def firings(schedule_id: str, cron: str, times: list[int]) -> None:
    """``schedules next``: the next firing times, one a line."""
    console.print(f"Next firings of {schedule_id} ({cron}, UTC):")
    for at in times:
        console.print(f"  {fmt_time(at)}")
    if not times:
        console.print("  none in the next five years")


def result(data: Any) -> None:
    """``invoke --wait``: a resolved promise's value as JSON, alone on stdout."""
    promise = _dict(data, "promise")
    if promise.get("state") != "resolved":
        return  # the caller reports the failure on stderr
    value = promise.get("value")
    text = decode_data(value.get("data")) if isinstance(value, dict) else None
    if not text:
        click.echo("null")
        return
    try:
        click.echo(json.dumps(json.loads(text), indent=2, ensure_ascii=False))
    except ValueError:
        click.echo(text)


def schedule_answer(data: Any) -> None:
    schedule_record(_dict(data, "schedule"))


def schedule_list(data: Any) -> None:
    rows: list[list[str | Text]] = [
        [
            str(s.get("id", "")),
            str(s.get("cron", "")),
            str(s.get("promiseId", "")),
            fmt_time(s.get("nextRunAt")),
            fmt_time(s.get("lastRunAt")),
        ]
        for s in _items(data, "schedules")
    ]
    _list(["id", "cron", "promise id", "next run", "last run"], rows, _cursor(data), "schedules")


# -- queues -----------------------------------------------------------------------------------


def _limit(value: object) -> str:
    return "-" if value is None else str(value)


def queue_answer(data: Any) -> None:
    q = _dict(data, "queue")
    waiting = _dict(q, "waitingByPriority")
    ordered = sorted(waiting.items(), key=lambda item: int(item[0]))
    by_priority = ", ".join(f"{n} at priority {p}" for p, n in ordered)
    _record(
        f"Queue {q.get('name', '?')}",
        [
            ("concurrency", _limit(q.get("concurrency"))),
            ("per key", _limit(q.get("perKeyConcurrency"))),
            ("rate", _limit(q.get("rate"))),
            ("dedup", "yes" if q.get("dedup") else "no"),
            ("running", str(q.get("running", 0))),
            ("waiting", f"{q.get('waiting', 0)}" + (f" ({by_priority})" if by_priority else "")),
            ("dispatched", str(q.get("dispatched", 0))),
            ("mean wait", f"{q.get('meanWaitMs', 0)} ms"),
            ("next dispatch", fmt_time(q.get("nextDispatchAt")) if "nextDispatchAt" in q else ""),
            ("created", fmt_time(q.get("createdAt"))),
        ],
    )


def queue_list(data: Any) -> None:
    rows: list[list[str | Text]] = [
        [
            str(q.get("name", "")),
            _limit(q.get("concurrency")),
            _limit(q.get("perKeyConcurrency")),
            _limit(q.get("rate")),
            str(q.get("running", 0)),
            str(q.get("waiting", 0)),
            str(q.get("dispatched", 0)),
        ]
        for q in _items(data, "queues")
    ]
    columns = ["name", "concurrency", "per key", "rate", "running", "waiting", "dispatched"]
    _list(columns, rows, None, "queues")


def retry_report(data: Any) -> None:
    """What ``sustain retry`` started: the new execution and what it took over."""
    promise = data.get("promise") or {}
    new_id = promise.get("id", "?")
    old_id = (promise.get("tags") or {}).get("sustain:retry-of", "?")
    copied = data.get("copied") or []
    if data.get("created") is False:
        note(f"{new_id} already retries {old_id}: nothing started")
        return
    # one line whatever the width: scripts and tests read it
    click.echo(f"retrying {old_id} as {new_id}: {len(copied)} resolved promise(s) taken over")
    for id in copied:
        click.echo(f"  {id}")


def cancel_report(data: Any) -> None:
    """What ``sustain cancel`` did: the ids it canceled, or why nothing was."""
    canceled = data.get("canceled") or []
    if not canceled:
        note(str(data.get("message", "")))
        return
    done(str(data.get("message", "")))
    for id in canceled:
        click.echo(f"  {id}")
