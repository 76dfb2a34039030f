"""The web UI's HTML building blocks: escaping, dates, durations, badges, the page layout and
live-refresh wrapper (views.py composes the pages from them).

Every piece of stored data goes through ``esc`` (``html.escape``, quotes included) before it
is written; ids travel in query strings percent-encoded by ``q``, because Sustain's ids
contain ``:`` and ``.``.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def q(value: str) -> str:
    return quote(value, safe="")


def when(ms: int | None) -> str:
    if ms is None:
        return ""
    try:
        stamp = datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def duration(ms: int | None) -> str:
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {sec} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} m"
    return f"{hours // 24} d {hours % 24} h"


def badge(state: str) -> str:
    return f'<span class="state state-{esc(state)}" data-state="{esc(state)}">{esc(state)}</span>'


def pretty(value: Any) -> str:
    return esc(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str))


# -- layout ----------------------------------------------------------------------------------

NAV = (
    ("executions", "Executions"),
    ("schedules", "Schedules"),
    ("queues", "Queues"),
    ("workers", "Workers"),
)


def page(title: str, active: str, body: str) -> str:
    links = "".join(
        f'<a href="/ui/{name}" class="{"active" if name == active else ""}">{label}</a>'
        for name, label in NAV
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · Sustain</title>"
        '<link rel=stylesheet href="/ui/static/ui.css">'
        '<script type=module src="/ui/static/ui.js"></script></head><body>'
        f'<header><a class=brand href="/ui/executions">Sustain</a><nav>{links}</nav></header>'
        f"<main>{body}</main></body></html>"
    )


def live(
    src: str, every_ms: int, inner: str, enabled: bool = True, until_settled: bool = False
) -> str:
    attrs = f' data-refresh="{every_ms}" data-src="{esc(src)}"' if enabled else ""
    if enabled and until_settled:
        attrs += " data-until-settled"
    return f"<div id=live{attrs}>{inner}</div>"


def message_page(title: str, text: str, status_hint: str = "") -> str:
    return page(title, "", f"<h1>{esc(title)}</h1><p class=notice>{esc(text)}</p>{status_hint}")
