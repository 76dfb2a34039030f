"""HTML of the web UI: plain functions over the query results, every value escaped.

No template engine: each page is a handful of small functions returning strings, and every
piece of stored data goes through ``esc`` (``html.escape``, quotes included) before it is
written.  Ids travel in query strings (``/ui/execution?id=wf%3A1``), percent-encoded by
``q``, because Sustain's ids contain ``:`` and ``.``.

Live refresh: a page wraps its changing part in ``<div data-refresh=MS data-src=URL>``;
``static/ui.js`` re-fetches URL (the same page with ``fragment=1``, which answers only that
part) every MS milliseconds while the tab is visible, and swaps it in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from sustain.protocol import callgraph, values
from sustain.protocol.records import PROMISE_STATES, Promise, Schedule
from sustain.protocol.tags import ORIGIN, PARENT, SCOPE, TARGET, TIMER
from sustain.protocol.versions import Pin
from sustain.server.ui import queries
from sustain.server.ui import status as ui_status
from sustain.server.ui.html import (
    badge,
    duration,
    esc,
    live,
    page,
    pretty,
    q,
    when,
)
from sustain.server.ui.lineage import lineage
from sustain.server.ui.queries import ExecutionDetail, ExecutionsPage, Filters, Node
from sustain.store.tx import TaskRow

EXTERNAL = "resonate:external"
_DETACHED = re.compile(r"^(?P<origin>[^.:]+):d[0-9a-f]{8,32}$")


def kind_of(promise: Promise, root_id: str) -> str:
    """run / rpc / sleep / promise / detached / root, from the SDKs' tags (SDK-WIRE §2.1)."""
    tags = promise.tags
    if promise.id == root_id:
        return "root"
    if tags.get(TIMER) == "true":
        return "sleep"
    if tags.get(EXTERNAL) == "true":
        return "promise"
    scope = tags.get(SCOPE)
    if scope == "local":
        return "run"
    match = _DETACHED.match(promise.id)
    if match and tags.get(PARENT) == match.group("origin") and tags.get(ORIGIN) == tags.get(PARENT):
        return "detached"
    if TARGET in tags:
        return "rpc"
    return "promise"


# -- executions ------------------------------------------------------------------------------


def _filters_query(filters: Filters, tags_text: str) -> dict[str, str]:
    query: dict[str, str] = {}
    if filters.state:
        query["state"] = filters.state
    if filters.func:
        query["func"] = filters.func
    if filters.prefix:
        query["prefix"] = filters.prefix
    if tags_text:
        query["tags"] = tags_text
    return query


def executions_form(filters: Filters, tags_text: str) -> str:
    options = "".join(
        f'<option value="{s}"{" selected" if filters.state == s else ""}>{s}</option>'
        for s in PROMISE_STATES
    )
    return (
        '<form class=filters method=get action="/ui/executions">'
        f'<label>State <select name=state><option value="">any</option>{options}</select></label>'
        f'<label>Function <input name=func value="{esc(filters.func)}"></label>'
        f'<label>Id prefix <input name=prefix value="{esc(filters.prefix)}"></label>'
        f'<label>Tags <input name=tags placeholder="key=value, key2=value2" '
        f'value="{esc(tags_text)}"></label>'
        "<button type=submit>Filter</button></form>"
    )


def executions_table(result: ExecutionsPage, filters: Filters, tags_text: str, now: int) -> str:
    rows = []
    for item in result.items:
        p = item.promise
        end = p.settledAt if p.settledAt is not None else now
        link = f"/ui/execution?id={q(p.id)}"
        sched = f" <span class=tag>schedule {esc(item.schedule)}</span>" if item.schedule else ""
        rows.append(
            f'<tr data-id="{esc(p.id)}"><td><a href="{link}">{esc(p.id)}</a>{sched}</td>'
            f"<td>{badge(p.state)}</td><td>{esc(item.func or '')}</td>"
            f"<td>{when(p.createdAt)}</td><td>{when(p.settledAt)}</td>"
            f"<td>{duration(end - p.createdAt)}{'' if p.settledAt else ' …'}</td></tr>"
        )
    if not rows:
        rows.append("<tr><td colspan=6 class=empty>No executions match.</td></tr>")
    more = ""
    if result.next_cursor is not None:
        query = {**_filters_query(filters, tags_text), "cursor": result.next_cursor}
        note = "" if result.complete else f" (searched {result.scanned} promises so far)"
        href = f"/ui/executions?{urlencode(query)}"
        more = f'<p class=pager><a rel=next href="{esc(href)}">Next page</a>{note}</p>'
    return (
        "<table class=executions><thead><tr><th>Id</th><th>State</th><th>Function</th>"
        "<th>Created</th><th>Settled</th><th>Duration</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def executions_page(
    result: ExecutionsPage, filters: Filters, tags_text: str, cursor: str | None, now: int
) -> str:
    query = _filters_query(filters, tags_text)
    if cursor is not None:
        query["cursor"] = cursor
    src = "/ui/executions?" + urlencode({**query, "fragment": "1"})
    first = "" if cursor is None else '<p><a href="/ui/executions">First page</a></p>'
    body = (
        "<h1>Executions</h1>" + executions_form(filters, tags_text) + first
        + live(src, 2000, executions_table(result, filters, tags_text, now))
    )  # fmt: skip
    return page("Executions", "executions", body)


# -- one execution ---------------------------------------------------------------------------


def _task_cell(task: TaskRow | None) -> str:
    if task is None:
        return "<span class=muted>no task</span>"
    parts = [f"task {badge(task.state)} v{task.version}"]
    if task.pid:
        parts.append(f"held by <code>{esc(task.pid)}</code>")
    if task.timeout_at is not None and task.timeout_at < queries.NEVER:
        label = "lease until" if task.timeout_type == 1 else "retry at"
        parts.append(f"{label} {when(task.timeout_at)}")
    return " · ".join(parts)


def label_of(node: callgraph.CallNode, kind: str) -> str:
    """What ``sustain tree`` prints for a node, with the kinds it does not name."""
    if kind == "root":
        return node.func or ""
    if kind == "detached":
        return f"(detached {node.func})" if node.func else "(detached)"
    if kind == "promise":
        return "(promise)"
    return node.label


def _tree_item(node: callgraph.CallNode, detail: ExecutionDetail, now: int) -> str:
    entry = detail.nodes[node.id]
    p = entry.promise
    kind = kind_of(p, detail.root.id)
    label = label_of(node, kind)
    children = "".join(_tree_item(c, detail, now) for c in node.children)
    nested = f"<ul>{children}</ul>" if children else ""
    return (
        f'<li class="node kind-{kind}" data-id="{esc(p.id)}" data-kind="{kind}" '
        f'data-state="{esc(p.state)}"><a href="/ui/promise?id={q(p.id)}">{esc(p.id)}</a> '
        f"<span class=label>{esc(label)}</span> {badge(p.state)} "
        f"<span class=task>{_task_cell(entry.task)}</span>"
        f"{ui_status.line(entry.status, p.state, now)}{nested}</li>"
    )


def _preorder(node: callgraph.CallNode, depth: int = 0) -> Iterable[tuple[callgraph.CallNode, int]]:
    yield node, depth
    for child in node.children:
        yield from _preorder(child, depth + 1)


def timeline(graph: callgraph.CallNode, detail: ExecutionDetail, now: int) -> str:
    """One bar per promise from createdAt to settledAt (now while pending)."""
    nodes = [(n, d, detail.nodes[n.id].promise) for n, d in _preorder(graph)]
    start = min(p.createdAt for _, _, p in nodes)
    end = max((p.settledAt if p.settledAt is not None else now) for _, _, p in nodes)
    span = max(end - start, 1)
    rows = []
    for _node, depth, p in nodes:
        stop = p.settledAt if p.settledAt is not None else now
        left = (p.createdAt - start) / span * 100
        width = max((stop - p.createdAt) / span * 100, 0.4)
        kind = kind_of(p, detail.root.id)
        classes = f"bar state-{p.state} kind-{kind}"
        if kind == "sleep":
            classes += " wait"
        if p.settledAt is None:
            classes += " growing"
        title = f"{p.id} {p.state} {duration(stop - p.createdAt)}"
        rows.append(
            f'<div class=trow data-id="{esc(p.id)}"><div class=tlabel style="padding-left:'
            f'{depth}em">{esc(p.id)}</div><div class=track><div class="{classes}" '
            f'data-state="{esc(p.state)}" style="left:{left:.3f}%;width:{width:.3f}%" '
            f'title="{esc(title)}"></div></div><div class=tdur>{duration(stop - p.createdAt)}'
            "</div></div>"
        )
    return (
        f"<div class=timeline><div class=tscale><span>{when(start)}</span>"
        f"<span>{duration(span)}</span><span>{when(end)}</span></div>{''.join(rows)}</div>"
    )


def value_block(p: Promise) -> str:
    """The decoded result (or error) of a settled promise."""
    if p.state == "pending":
        return "<p class=muted>pending</p>"
    if p.state == "rejected_canceled":
        return "<p class=error>canceled</p>"
    if p.state == "rejected_timedout":
        return "<p class=error>timed out</p>"
    ok, value = values.decode_json(p.value.data)
    if not ok:
        return f"<pre class=raw>{esc(value)}</pre>"
    if isinstance(value, dict) and value.get("__type") in ("error", "aggregate_error"):
        name = value.get("name") or "Error"
        return f"<p class=error><b>{esc(name)}</b>: {esc(value.get('message'))}</p>"
    cls = "error" if p.state == "rejected" else "value"
    return f"<pre class={cls}>{pretty(value)}</pre>"


def args_block(p: Promise) -> str:
    inv = queries.invocation(p)
    if inv is not None and "argsNote" in inv:
        # A step whose arguments were too large (or not JSON) to record whole (sdk/codec.py)
        preview = inv.get("argsPreview")
        cut = f"<pre class=args>{esc(preview)}…</pre>" if isinstance(preview, str) else ""
        return f"<p class=muted>{esc(inv['argsNote'])}</p>{cut}"
    if inv is not None:
        shown = {"args": inv.get("args", []), "kwargs": inv.get("kwargs", {})}
        return f"<pre class=args>{pretty(shown)}</pre>"
    ok, value = values.decode_json(p.param.data)
    if value is None:
        return "<p class=muted>none</p>"
    return f"<pre class=args>{pretty(value) if ok else esc(value)}</pre>"


def _details(detail: ExecutionDetail, graph: callgraph.CallNode, now: int) -> str:
    blocks = []
    for node, _ in _preorder(graph):
        entry = detail.nodes[node.id]
        p = entry.promise
        kind = kind_of(p, detail.root.id)
        if kind == "sleep":
            body = f"<p>sleeps until {when(p.timeoutAt)}</p>"
        else:
            body = f"<h4>Arguments</h4>{args_block(p)}<h4>Result</h4>{value_block(p)}"
        blocks.append(
            f'<details class=node-detail data-id="{esc(p.id)}"><summary><code>{esc(p.id)}</code> '
            f"{esc(label_of(node, kind) or kind)} {badge(p.state)}</summary>{body}"
            f"<p>{_task_cell(entry.task)}</p>{ui_status.block(entry.status, p.state, now)}"
            "</details>"
        )
    return "".join(blocks)


def pin_note(pin: Pin, group: str | None, served: bool) -> str:
    """An execution pinned to a function version (protocol/versions.py), and whether it can
    run now; an empty string for one that is not pinned."""
    name = f"<b>{esc(pin[0])}</b> v{pin[1]}"
    if served:
        return f"<p class=summary>Pinned to {name}.</p>"
    return (
        f"<p class='notice waiting-version'>Pinned to {name}: waiting for a worker of group "
        f"<code>{esc(group or '?')}</code> that serves this version (none is connected).</p>"
    )


def execution_body(detail: ExecutionDetail, now: int, note: str = "") -> str:
    nodes = [queries.to_dict(n.promise) for n in detail.nodes.values()]
    root = detail.root
    graph = callgraph.build(queries.to_dict(root), nodes)
    end = root.settledAt if root.settledAt is not None else now
    func = queries.function_of(root)
    truncated = (
        f"<p class=notice>Only the first {len(detail.nodes)} promises are shown.</p>"
        if detail.truncated else ""
    )  # fmt: skip
    return (
        f"{lineage(detail)}"
        f"<p class=summary>{badge(root.state)} <b>{esc(func or '')}</b> · created "
        f"{when(root.createdAt)} · settled {when(root.settledAt) or '—'} · "
        f"{duration(end - root.createdAt)} · {len(detail.nodes)} promises</p>{note}{truncated}"
        f"{ui_status.notice(detail.nodes[root.id].status, root.state, now)}"
        f"<section><h2>Result</h2>{value_block(root)}</section>"
        f"<section><h2>Call tree</h2><ul class=tree>{_tree_item(graph, detail, now)}</ul>"
        f"</section><section><h2>Timeline</h2>{timeline(graph, detail, now)}</section>"
        f"<section><h2>Steps</h2>{_details(detail, graph, now)}</section>"
    )


def execution_page(detail: ExecutionDetail, now: int, note: str = "") -> str:
    root = detail.root
    src = f"/ui/execution?id={q(root.id)}&fragment=1"
    pending = any(n.promise.state == "pending" for n in detail.nodes.values())
    body = f"<h1>Execution <code>{esc(root.id)}</code></h1>" + live(
        src, 1000, execution_body(detail, now, note), enabled=pending, until_settled=True
    )
    if root.state == "pending":
        body += f"<section><h2>Cancel</h2>{cancel_form(root.id)}</section>"
    return page(f"Execution {root.id}", "executions", body)


def cancel_form(id: str) -> str:
    return (
        '<form class=cancel method=post action="/ui/execution/cancel">'
        f'<input type=hidden name=id value="{esc(id)}">'
        "<p>Cancels this execution and every pending call under it, in any group; their "
        "workers stop them.</p>"
        "<label><input type=checkbox name=detached value=1> Also its detached calls</label> "
        "<button type=submit>Review…</button></form>"
    )


def confirm_cancel_page(id: str, detached: bool) -> str:
    also = " and its detached calls" if detached else " (its detached calls keep running)"
    body = (
        f"<h1>Cancel execution <code>{esc(id)}</code>?</h1>"
        f"<p>It and every pending call under it{also} will be canceled; whoever awaits them "
        "gets a CanceledError.</p>"
        '<form method=post action="/ui/execution/cancel">'
        f'<input type=hidden name=id value="{esc(id)}">'
        f'<input type=hidden name=detached value="{"1" if detached else ""}">'
        "<input type=hidden name=confirmed value=1>"
        "<button type=submit class=danger>Confirm: cancel</button> "
        f'<a href="/ui/execution?id={q(id)}">Back</a></form>'
    )
    return page(f"Cancel {id}", "executions", body)


# -- one promise (and human in the loop) -----------------------------------------------------


def settle_form(p: Promise) -> str:
    return (
        '<form class=settle method=post action="/ui/promise/settle">'
        f'<input type=hidden name=id value="{esc(p.id)}">'
        "<label><input type=radio name=state value=resolved checked> Resolve</label> "
        "<label><input type=radio name=state value=rejected> Reject</label>"
        "<label class=block>Value (JSON)<textarea name=value rows=6 spellcheck=false>null"
        "</textarea></label><button type=submit>Review…</button></form>"
    )


def promise_page(node: Node, now: int) -> str:
    p = node.promise
    origin = p.tags.get(ORIGIN) or p.id
    kind = kind_of(p, origin)
    end = p.settledAt if p.settledAt is not None else now
    tags = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in p.tags.items())
    action = ""
    if p.state == "pending":
        hint = (
            "This is an external promise: a workflow is waiting for it."
            if kind == "promise" else "Settling it by hand ends this call with your value."
        )  # fmt: skip
        action = f"<section><h2>Settle</h2><p>{hint}</p>{settle_form(p)}</section>"
    body = (
        f"<h1>Promise <code>{esc(p.id)}</code></h1>"
        f"<p class=summary>{badge(p.state)} {esc(kind)} · execution "
        f'<a href="/ui/execution?id={q(origin)}">{esc(origin)}</a> · created {when(p.createdAt)}'
        f" · timeout {when(p.timeoutAt)} · {duration(end - p.createdAt)}</p>"
        f"<p>{_task_cell(node.task)}</p>{ui_status.block(node.status, p.state, now)}"
        f"<section><h2>Arguments</h2>{args_block(p)}</section>"
        f"<section><h2>Result</h2>{value_block(p)}</section>{action}"
        f"<section><h2>Tags</h2><table class=tags>{tags}</table></section>"
    )
    return page(f"Promise {p.id}", "executions", body)


def confirm_settle_page(id: str, state: str, text: str, value: Any) -> str:
    verb = "Resolve" if state == "resolved" else "Reject"
    body = (
        f"<h1>{verb} <code>{esc(id)}</code>?</h1><p>The promise will be {esc(state)} with:</p>"
        f"<pre class=value>{pretty(value)}</pre>"
        '<form method=post action="/ui/promise/settle">'
        f'<input type=hidden name=id value="{esc(id)}">'
        f'<input type=hidden name=state value="{esc(state)}">'
        f'<input type=hidden name=value value="{esc(text)}">'
        "<input type=hidden name=confirmed value=1>"
        f"<button type=submit class=danger>Confirm: {verb.lower()}</button> "
        f'<a href="/ui/promise?id={q(id)}">Cancel</a></form>'
    )
    return page(f"{verb} {id}", "executions", body)


# -- schedules -------------------------------------------------------------------------------


def schedules_page(rows: list[queries.ScheduleRow], now: int) -> str:
    out = []
    for row in rows:
        s: Schedule = row.schedule
        runs = row.runs[-queries.MAX_SCHEDULE_RUNS :]
        links = " ".join(
            f'<a href="/ui/execution?id={q(p.id)}">{esc(p.id)}</a> {badge(p.state)}' for p in runs
        )
        more = " …" if len(row.runs) > queries.MAX_SCHEDULE_RUNS else ""
        func = queries.invocation(
            Promise(s.id, "pending", s.promiseParam, s.promiseParam, {}, 0, 0)
        )
        out.append(
            f'<tr data-id="{esc(s.id)}"><td>{esc(s.id)}</td><td><code>{esc(s.cron)}</code></td>'
            f"<td>{esc(func['func'] if func else '')}</td>"
            f"<td>{when(s.nextRunAt)}</td><td>{when(s.lastRunAt) or '—'}</td>"
            f"<td>{links or '<span class=muted>none yet</span>'}{more}</td>"
            '<td><form method=post action="/ui/schedules/delete">'
            f'<input type=hidden name=id value="{esc(s.id)}">'
            "<button type=submit class=danger>Delete…</button></form></td></tr>"
        )
    if not out:
        out.append("<tr><td colspan=7 class=empty>No schedules.</td></tr>")
    table = (
        "<table class=schedules><thead><tr><th>Id</th><th>Cron</th><th>Function</th>"
        "<th>Next run</th><th>Last run</th><th>Promises created</th><th></th></tr></thead>"
        f"<tbody>{''.join(out)}</tbody></table>"
    )
    del now
    return page(
        "Schedules",
        "schedules",
        "<h1>Schedules</h1>" + live("/ui/schedules?fragment=1", 5000, table),
    )


def confirm_delete_page(id: str) -> str:
    body = (
        f"<h1>Delete schedule <code>{esc(id)}</code>?</h1>"
        "<p>No more promises will be created; the ones it created stay.</p>"
        '<form method=post action="/ui/schedules/delete">'
        f'<input type=hidden name=id value="{esc(id)}"><input type=hidden name=confirmed value=1>'
        "<button type=submit class=danger>Confirm: delete</button> "
        '<a href="/ui/schedules">Cancel</a></form>'
    )
    return page(f"Delete {id}", "schedules", body)


# -- workers ---------------------------------------------------------------------------------


def functions_cell(functions: dict[str, list[int]] | None) -> str:
    if functions is None:
        return "<span class=muted>not announced (unpinned work only)</span>"
    if not functions:
        return "<span class=muted>none</span>"
    return " ".join(
        f"<code>{esc(name)}</code> v{','.join(str(v) for v in versions)}"
        for name, versions in functions.items()
    )


def workers_table(workers: list[dict[str, Any]]) -> str:
    rows = []
    for w in workers:
        tasks = " ".join(
            f'<a href="/ui/promise?id={q(t["id"])}">{esc(t["id"])}</a> v{t["version"]}'
            for t in w["tasks"]
        )
        rows.append(
            f'<tr data-group="{esc(w["group"])}" data-pid="{esc(w["pid"])}">'
            f"<td>{esc(w['group'])}</td><td><code>{esc(w['pid'])}</code></td>"
            f"<td class=functions>{functions_cell(w['functions'])}</td>"
            f"<td>{w['connections']}</td><td>{len(w['tasks'])}</td>"
            f"<td>{tasks or '<span class=muted>idle</span>'}</td></tr>"
        )
    if not rows:
        rows.append("<tr><td colspan=6 class=empty>No worker is connected.</td></tr>")
    return (
        "<table class=workers><thead><tr><th>Group</th><th>Pid</th><th>Functions</th>"
        "<th>Streams</th>"
        f"<th>Tasks held</th><th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def workers_page(workers: list[dict[str, Any]]) -> str:
    body = (
        "<h1>Workers</h1><p class=muted>Open poll streams (<code>GET /poll/{group}/{pid}</code>)"
        ", the functions and versions each serves (an execution pinned to a version runs"
        ' only where it is served) and the tasks each pid holds. JSON: <a href="/workers">'
        "/workers</a></p>" + live("/ui/workers?fragment=1", 2000, workers_table(workers))
    )
    return page("Workers", "workers", body)
