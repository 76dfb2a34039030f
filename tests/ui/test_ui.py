"""The web UI in a real headless Chromium against a real ``sustain serve``.

One server per module runs a fan-out, a sleeping, a failing and a waiting (human in the loop)
workflow through a remote ``Sustain`` worker; the browser lists, filters and opens them, and
resolves the external promise from its page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from sustain import Sustain
from sustain.sdk.handles import Handle
from tests.scenarios.processes import wait_until
from tests.servers import ServerProcess, start_server, unique
from tests.ui.workflows import register

T = TypeVar("T")
FANOUT = 5
_THREAD = ThreadPoolExecutor(1, thread_name_prefix="sdk-calls")


def sync(fn: Callable[[], T]) -> T:
    """Run a blocking SDK call on a thread of its own.  Playwright's sync API keeps an event
    loop running on the main thread, where the SDK's ``result()`` would (rightly) think it is
    called from async code and hand back an awaitable."""
    return _THREAD.submit(fn).result()


@dataclass
class World:
    server: ServerProcess
    sustain: Sustain
    prefix: str
    approval: Handle

    def url(self, path: str) -> str:
        return self.server.url + path

    def id(self, name: str) -> str:
        return f"{self.prefix}{name}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    server = start_server(tmp_path_factory.mktemp("ui"))
    group = unique("ui")
    sustain = Sustain(url=server.url, group=group)
    register(sustain)
    prefix = unique("x") + "-"
    try:
        fan = sustain.options(tags={"team": "blue"}).run(f"{prefix}fan", "fanout", FANOUT)
        assert sync(lambda: fan.result(timeout=60)) == sum(i * i for i in range(FANOUT))
        sustain.run(f"{prefix}nap", "sleeper")
        with pytest.raises(ValueError, match="declined"):
            bad = sustain.run(f"{prefix}bad", "failing", "4242")
            sync(lambda: bad.result(timeout=60))
        approval = sustain.run(f"{prefix}ask", "approval", "o-7")

        def waiting(id: str) -> bool:
            return bool(sync(lambda: sustain.promises.get(id))["state"] == "pending")

        wait_until(lambda: _exists(sustain, f"{prefix}nap:2"), 60, "the sleep to start")
        wait_until(lambda: _exists(sustain, f"{prefix}ask:1") and waiting(f"{prefix}ask:1"),
                   60, "the external promise")  # fmt: skip
        yield World(server, sustain, prefix, approval)
    finally:
        sync(sustain.stop)
        server.stop()


def _exists(sustain: Sustain, id: str) -> bool:
    try:
        sync(lambda: sustain.promises.get(id))
    except Exception:
        return False
    return True


def _ids(page: Any, selector: str) -> list[str]:
    return [str(e.get_attribute("data-id")) for e in page.query_selector_all(selector)]


def _states(page: Any, selector: str) -> dict[str, str]:
    return {
        str(e.get_attribute("data-id")): str(e.get_attribute("data-state"))
        for e in page.query_selector_all(selector)
    }


def test_executions_list_filters_and_pages(world: World, page: Any, shots: Path) -> None:
    page.goto(world.url(f"/ui/executions?prefix={world.prefix}"))
    rows = _ids(page, "table.executions tbody tr[data-id]")
    # the roots only, in id order: no child promise (fan:1, nap:2, ...) is an execution
    assert rows == sorted(world.id(n) for n in ("ask", "bad", "fan", "nap"))
    states = {r: page.get_attribute(f'tr[data-id="{r}"] .state', "data-state") for r in rows}
    assert states == {
        world.id("ask"): "pending",
        world.id("bad"): "rejected",
        world.id("fan"): "resolved",
        world.id("nap"): "pending",
    }
    assert page.inner_text(f'tr[data-id="{world.id("fan")}"] td:nth-child(3)') == "fanout"
    page.screenshot(path=str(shots / "executions.png"), full_page=True)

    # filter by state through the form
    page.select_option("select[name=state]", "rejected")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"state=rejected"))
    assert _ids(page, "table.executions tbody tr[data-id]") == [world.id("bad")]
    page.screenshot(path=str(shots / "executions-rejected.png"), full_page=True)

    # by function, by tag
    page.goto(world.url(f"/ui/executions?prefix={world.prefix}&func=sleeper"))
    assert _ids(page, "table.executions tbody tr[data-id]") == [world.id("nap")]
    page.goto(world.url("/ui/executions?tags=team%3Dblue"))
    assert world.id("fan") in _ids(page, "table.executions tbody tr[data-id]")
    assert world.id("bad") not in _ids(page, "table.executions tbody tr[data-id]")

    # live refresh: the table is fetched again by ui.js without a reload
    page.goto(world.url(f"/ui/executions?prefix={world.prefix}"))
    page.wait_for_function(
        "() => document.getElementById('live').dataset.refreshedAt !== undefined"
    )


def test_pagination_over_many_executions(world: World) -> None:
    base = unique("many")
    for i in range(60):
        id = f"{base}{i:03d}"
        sync(lambda id=id: world.sustain.promises.create(id, 3600, tags={"resonate:origin": id}))
    first = httpx.get(world.url(f"/ui/executions?prefix={base}"), timeout=30)
    assert first.status_code == 200
    ids = re.findall(r'<tr data-id="([^"]+)"', first.text)
    assert ids == [f"{base}{i:03d}" for i in range(50)]
    more = re.search(r'<a rel=next href="([^"]+)"', first.text)
    assert more is not None
    second = httpx.get(world.url(more.group(1).replace("&amp;", "&")), timeout=30)
    assert re.findall(r'<tr data-id="([^"]+)"', second.text) == [
        f"{base}{i:03d}" for i in range(50, 60)
    ]
    assert "rel=next" not in second.text


def test_fanout_tree_and_timeline(world: World, page: Any, shots: Path) -> None:
    page.goto(world.url(f"/ui/executions?prefix={world.prefix}"))
    page.click(f'tr[data-id="{world.id("fan")}"] a')
    page.wait_for_url(re.compile(r"/ui/execution\?id="))
    fan = world.id("fan")
    tree = _states(page, "ul.tree li.node")
    children = [f"{fan}:{i + 1}" for i in range(FANOUT)]
    assert tree == {fan: "resolved", **dict.fromkeys(children, "resolved")}
    kinds = {e.get_attribute("data-id"): e.get_attribute("data-kind")
             for e in page.query_selector_all("ul.tree li.node")}  # fmt: skip
    assert kinds == {fan: "root", **dict.fromkeys(children, "rpc")}
    # the children hang under the root
    assert _ids(page, f'ul.tree li[data-id="{fan}"] > ul > li') == children
    assert _ids(page, ".timeline .trow") == [fan, *children]
    assert set(_states(page, ".timeline .bar").values()) == {"resolved"}
    assert "(rpc square)" in page.inner_text("ul.tree")
    # decoded arguments and result, and each child's task
    page.click(f'details[data-id="{fan}:3"] summary')
    detail = page.inner_text(f'details[data-id="{fan}:3"]')
    assert '"args": [\n    2\n  ]' in detail and "4" in detail
    assert "fulfilled" in page.inner_text(f'ul.tree li[data-id="{fan}:3"] .task')
    assert "30" in page.inner_text("section:has(h2:text('Result')) pre")
    page.screenshot(path=str(shots / "execution-fanout.png"), full_page=True)


def test_sleeping_execution_draws_a_wait(world: World, page: Any, shots: Path) -> None:
    nap = world.id("nap")
    page.goto(world.url(f"/ui/execution?id={nap}"))
    assert _states(page, "ul.tree li.node") == {
        nap: "pending",
        f"{nap}:1": "resolved",
        f"{nap}:2": "pending",
    }
    sleep_bar = page.query_selector(f'.trow[data-id="{nap}:2"] .bar')
    assert sleep_bar is not None
    classes = str(sleep_bar.get_attribute("class")).split()
    assert {"wait", "growing", "kind-sleep"} <= set(classes)
    assert "suspended" in page.inner_text(f'ul.tree li[data-id="{nap}"] > .task')
    # a pending bar grows: the live refresh redraws it with a longer duration
    sel = f'.trow[data-id="{nap}:2"] .tdur'
    before = page.inner_text(sel)
    page.wait_for_function(
        f"""() => {{ const d = document.querySelector('{sel}');
        return d && d.textContent !== {before!r}; }}"""
    )
    page.screenshot(path=str(shots / "execution-sleeping.png"), full_page=True)


def test_failed_execution_shows_its_error(world: World, page: Any, shots: Path) -> None:
    bad = world.id("bad")
    page.goto(world.url(f"/ui/execution?id={bad}"))
    assert _states(page, "ul.tree li.node") == {bad: "rejected", f"{bad}:1": "resolved"}
    result = page.inner_text("section:has(h2:text('Result'))")
    assert "ValueError" in result and "card 4242 declined" in result
    page.screenshot(path=str(shots / "execution-failed.png"), full_page=True)


def test_resolve_an_external_promise_from_its_page(world: World, page: Any, shots: Path) -> None:
    ask = world.id("ask")
    page.goto(world.url(f"/ui/execution?id={ask}"))
    assert _states(page, "ul.tree li.node") == {ask: "pending", f"{ask}:1": "pending"}
    assert page.get_attribute(f'li[data-id="{ask}:1"]', "data-kind") == "promise"
    # a second tab keeps the execution open: its live view must show the completion
    watch = page.context.new_page()
    watch.goto(world.url(f"/ui/execution?id={ask}"))
    page.click(f'li[data-id="{ask}:1"] > a')
    page.wait_for_url(re.compile(r"/ui/promise\?id="))
    page.fill("form.settle textarea[name=value]", '{"approved": true, "by": "ana"}')
    page.screenshot(path=str(shots / "promise-settle.png"), full_page=True)
    page.click("form.settle button[type=submit]")
    # the confirmation restates the value; nothing is settled yet
    page.wait_for_selector("text=Confirm: resolve")
    assert sync(lambda: world.sustain.promises.get(f"{ask}:1"))["state"] == "pending"
    page.screenshot(path=str(shots / "promise-confirm.png"), full_page=True)
    page.click("text=Confirm: resolve")
    page.wait_for_selector("[data-state=resolved]")
    assert sync(lambda: world.approval.result(timeout=60)) == {
        "order": "o-7",
        "decision": {"approved": True, "by": "ana"},
    }
    watch.wait_for_selector(f'li.node[data-id="{ask}"][data-state="resolved"]')
    assert _states(watch, "ul.tree li.node") == {ask: "resolved", f"{ask}:1": "resolved"}
    assert '"approved": true' in watch.inner_text("section:has(h2:text('Result')) pre")
    page.goto(world.url(f"/ui/execution?id={ask}"))
    assert _states(page, "ul.tree li.node") == {ask: "resolved", f"{ask}:1": "resolved"}
    page.screenshot(path=str(shots / "execution-approved.png"), full_page=True)


def test_invalid_json_and_cross_origin_posts_are_refused(world: World) -> None:
    url = world.url("/ui/promise/settle")
    form = {"id": world.id("nap:2"), "state": "resolved", "value": "{nope", "confirmed": "1"}
    same = {"origin": world.server.url}
    bad = httpx.post(url, data=form, headers=same, timeout=30)
    assert bad.status_code == 400 and "not JSON" in bad.text
    form["value"] = "1"
    assert httpx.post(url, data=form, timeout=30).status_code == 403  # no Origin
    other = {"origin": "http://evil.example"}
    assert httpx.post(url, data=form, headers=other, timeout=30).status_code == 403
    assert sync(lambda: world.sustain.promises.get(world.id("nap:2")))["state"] == "pending"


def test_schedules_page_lists_and_deletes(world: World, page: Any, shots: Path) -> None:
    name = unique("sched")
    scheduler = world.sustain.options(target=world.sustain.group)
    sync(lambda: scheduler.schedule(name, "0 0 1 1 *", "square", 3))
    page.goto(world.url("/ui/schedules"))
    row = page.query_selector(f'tr[data-id="{name}"]')
    assert row is not None
    text = row.inner_text()
    assert "0 0 1 1 *" in text and "square" in text and "none yet" in text
    page.screenshot(path=str(shots / "schedules.png"), full_page=True)
    page.click(f'tr[data-id="{name}"] button')
    page.click("text=Confirm: delete")
    page.wait_for_url(re.compile(r"/ui/schedules$"))
    assert page.query_selector(f'tr[data-id="{name}"]') is None


def test_workers_page_and_endpoint(world: World, page: Any, shots: Path) -> None:
    body = httpx.get(world.url("/workers"), timeout=30).json()
    mine = [w for w in body["workers"] if w["group"] == world.sustain.group]
    assert [w["pid"] for w in mine] == [world.sustain.pid]
    assert mine[0]["connections"] >= 1
    page.goto(world.url("/ui/workers"))
    row = page.query_selector(f'tr[data-pid="{world.sustain.pid}"]')
    assert row is not None and world.sustain.group in row.inner_text()
    page.screenshot(path=str(shots / "workers.png"), full_page=True)


def test_auth_on_refuses_ui_without_token(tmp_path: Path, page: Any) -> None:
    import jwt

    server = start_server(tmp_path, "--auth-publickey", "none")
    try:
        for path in ("/ui", "/ui/executions", "/workers"):
            assert httpx.get(server.url + path, timeout=30).status_code == 401
        token = jwt.encode({"exp": 4_000_000_000, "role": "admin"}, key="", algorithm="none")
        reader = jwt.encode({"exp": 4_000_000_000, "prefix": "tenant-"}, key="", algorithm="none")
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/workers", headers=bearer, timeout=30).status_code == 200
        limited = {"authorization": f"Bearer {reader}"}
        assert httpx.get(server.url + "/ui/executions", headers=limited).status_code == 403
        assert httpx.get(server.url + "/ui?token=garbage", timeout=30).status_code == 401
        # the browser: ?token= once, then the HttpOnly cookie
        page.goto(f"{server.url}/ui?token={token}")
        assert page.url.endswith("/ui/executions")
        assert page.query_selector("table.executions") is not None
        cookie = [c for c in page.context.cookies() if c["name"] == "sustain_token"]
        assert cookie and cookie[0]["httpOnly"] and cookie[0]["sameSite"] == "Strict"
        page.goto(f"{server.url}/ui/workers")
        assert page.query_selector("table.workers") is not None
    finally:
        server.stop()


def test_a_promise_inside_an_execution_shows_its_subtree(world: World) -> None:
    child = world.id("fan") + ":2"
    answer = httpx.get(world.url(f"/ui/execution?id={child}"), timeout=30)
    assert answer.status_code == 200
    assert re.findall(r'<li class="node[^"]*" data-id="([^"]+)"', answer.text) == [child]
    assert answer.headers["content-security-policy"].startswith("default-src 'self'")
    missing = httpx.get(world.url("/ui/execution?id=no-such-execution"), timeout=30)
    assert missing.status_code == 404
    assert httpx.get(world.url("/ui/executions?state=bogus"), timeout=30).status_code == 400
