"""Tenant isolation over HTTP (docs/security.md): a token with ``prefix`` claims reaches only the
ids and poll groups of its prefix, whole segments only, through every field of every operation.

The numbered tests reproduce the findings of issue 13's probe (a token with ``prefix: "tA-"``)
against a real server with RSA-signed tokens; the matrix then walks every operation kind and
nested action, one touched field at a time.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sustain import Context, Sustain
from tests.servers import ServerProcess, free_port, start_server

HOUR = 3_600_000
LATER = 9_000_000_000_000


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, key: rsa.RSAPrivateKey) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("tenancy")
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp / "public.pem").write_bytes(pem)
    proc = start_server(tmp, "--auth-publickey", str(tmp / "public.pem"))
    yield proc
    proc.stop()


def token(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    claims.setdefault("exp", int(time.time()) + 600)
    return jwt.encode(claims, key, algorithm="RS256")


def uid() -> str:
    return uuid.uuid4().hex[:10]


def target(group: str) -> dict[str, str]:
    return {"resonate:target": f"poll://any@{group}"}


def create_action(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "promise.create", "head": {}, "data": data}


def own_task(
    server: ServerProcess, auth: str, id: str, group: str, tags: dict[str, str] | None = None
) -> int:
    """Create ``id`` as an acquired task of ``auth``'s tenant; answer its version."""
    data = {"id": id, "timeoutAt": LATER, "tags": {**(tags or {}), **target(group)}}
    answer = server.ok(
        "task.create", {"pid": "w1", "ttl": 60_000, "action": create_action(data)}, auth=auth
    )
    return int(answer["task"]["version"])


def forbidden(answer: Any) -> bool:
    return (answer.status, answer.data) == (403, "Forbidden")


# -- 1. task.fence authorizes its inner action --------------------------------------------------


def test_fence_authorizes_the_inner_action(server: ServerProcess, key: rsa.RSAPrivateKey) -> None:
    a, b = token(key, prefix="tA-"), token(key, prefix="tB-")
    n = uid()
    param = {"headers": {}, "data": "c2VjcmV0"}
    server.ok("promise.create", {"id": f"tB-plain-{n}", "timeoutAt": LATER, "param": param}, auth=b)
    task = f"tA-t1-{n}"
    version = own_task(server, a, task, f"tA-group-{n}")

    def fence(action: dict[str, Any]) -> Any:
        return server.rpc("task.fence", {"id": task, "version": version, "action": action}, auth=a)

    settle = fence({"kind": "promise.settle", "data": {"id": f"tB-plain-{n}", "state": "rejected"}})
    assert forbidden(settle), settle
    assert (
        server.ok("promise.get", {"id": f"tB-plain-{n}"}, auth=b)["promise"]["state"] == "pending"
    )

    existing = fence(create_action({"id": f"tB-plain-{n}", "timeoutAt": LATER}))
    assert forbidden(existing), existing  # and so neither B's record nor its param

    planted = fence(
        create_action(
            {"id": f"tB-injected-{n}", "timeoutAt": LATER, "tags": target(f"tB-group-{n}")}
        )
    )
    assert forbidden(planted), planted
    assert server.rpc("promise.get", {"id": f"tB-injected-{n}"}, auth=b).status == 404

    # Its own id, but work for B's workers: the target's group is authorized too.
    aimed = fence(create_action({"id": f"tA-c-{n}", "timeoutAt": LATER, "tags": target("tB-g")}))
    assert forbidden(aimed), aimed

    mine = fence(create_action({"id": f"tA-c-{n}", "timeoutAt": LATER, "tags": target("tA-g")}))
    assert mine.status == 200, mine
    assert mine.data["action"]["head"]["status"] == 200


# -- 2. schedule.create authorizes its id, its promise template and its target ---------------------


def test_schedule_create_authorizes_id_template_and_target(
    server: ServerProcess, key: rsa.RSAPrivateKey
) -> None:
    a, b = token(key, prefix="tA-"), token(key, prefix="tB-")
    n = uid()
    secret = {"headers": {}, "data": "c2VjcmV0"}
    daily = {
        "id": f"tB-daily-{n}",
        "cron": "0 9 * * *",
        "promiseId": "tB-{{.id}}.{{.timestamp}}",
        "promiseTimeout": HOUR,
        "promiseParam": secret,
        "promiseTags": target(f"tB-group-{n}"),
    }
    server.ok("schedule.create", daily, auth=b)

    answer = server.rpc(
        "schedule.create", {**daily, "promiseId": "tA-{{.id}}", "promiseParam": None}, auth=a
    )
    assert forbidden(answer), answer  # B's schedule (and its promiseParam) is not answered

    squat = {**daily, "id": f"tB-squat-{n}", "promiseId": "tA-{{.id}}", "promiseParam": None}
    squat["promiseTags"] = target(f"tA-group-{n}")
    assert forbidden(server.rpc("schedule.create", squat, auth=a))
    assert server.rpc("schedule.get", {"id": f"tB-squat-{n}"}, auth=b).status == 404

    mine = {**squat, "id": f"tA-daily-{n}"}
    for template in ("tB-{{.id}}", "{{.timestamp}}-x", "tA{{.timestamp}}"):
        answer = server.rpc("schedule.create", {**mine, "promiseId": template}, auth=a)
        assert forbidden(answer), (template, answer)
    aimed = server.rpc("schedule.create", {**mine, "promiseTags": target("tB-group")}, auth=a)
    assert forbidden(aimed), aimed

    # {{.id}} is the (authorized) schedule id: the SDKs' own template is fine.
    for template in ("tA-{{.id}}", "{{.id}}-{{.timestamp}}", "{{.id}}.{{.timestamp}}"):
        created = server.rpc("schedule.create", {**mine, "promiseId": template}, auth=a)
        assert created.status == 200, (template, created)
        server.ok("schedule.delete", {"id": mine["id"]}, auth=a)


# -- 3. poll streams are authorized by group, and limited per tenant -------------------------------


@contextlib.contextmanager
def stream(server: ServerProcess, path: str, auth: str) -> Iterator[httpx.Response]:
    headers = {"authorization": f"Bearer {auth}"}
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("GET", path, headers=headers) as response,
    ):
        yield response


def test_poll_stream_needs_the_group(server: ServerProcess, key: rsa.RSAPrivateKey) -> None:
    a, b = token(key, prefix="tA-"), token(key, prefix="tB-")
    with stream(server, "/poll/tB-group/w1", a) as denied:
        denied.read()
        assert (denied.status_code, denied.text) == (403, "Forbidden")
        assert denied.headers["content-type"].startswith("text/plain")
    with stream(server, "/poll/tB-groupie/w1", token(key, prefix="tB-group")) as denied:
        assert denied.status_code == 403  # whole segments: tB-group is not tB-groupie's
    with stream(server, "/poll/tA-group/w1", a) as mine:
        assert mine.status_code == 200
    with stream(server, "/poll/tB-group/w1", b) as theirs:
        assert theirs.status_code == 200
    with stream(server, "/poll/anything/w1", token(key, role="admin")) as admin:
        assert admin.status_code == 200
    with stream(server, "/poll/anything/w1", token(key, prefix="")) as everything:
        assert everything.status_code == 200
    with stream(server, "/poll/tA-group/w1", token(key)) as no_prefix:
        assert no_prefix.status_code == 403


def test_poll_streams_are_limited_per_prefix(spawn: Any, tmp_path: Any) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "public.pem").write_bytes(pem)
    server = spawn(
        "--auth-publickey",
        str(tmp_path / "public.pem"),
        "--http-poll-max-connections-per-prefix",
        "2",
    )
    a, a2 = token(key, prefix="tA-", sub="one"), token(key, prefix="tA-", sub="two")
    with contextlib.ExitStack() as held:
        for n in range(2):
            assert held.enter_context(stream(server, f"/poll/tA-g/w{n}", a)).status_code == 200
        # Another token of the same tenant shares its limit.
        with stream(server, "/poll/tA-g/w9", a2) as over:
            over.read()
            assert over.status_code == 429
            assert over.text == "Too many poll streams for this token's prefix (limit 2)"
        with stream(server, "/poll/tB-g/w1", token(key, prefix="tB-")) as other:
            assert other.status_code == 200  # another tenant is not crowded out
        with stream(server, "/poll/any/w1", token(key, role="admin")) as admin:
            assert admin.status_code == 200  # operators' tokens: only the global cap
    # Closed streams give their slots back (once the server noticed the disconnect).
    deadline = time.monotonic() + 30
    while True:
        with stream(server, "/poll/tA-g/again", a) as response:
            if response.status_code == 200:
                break
        assert time.monotonic() < deadline, "slots never came back"
        time.sleep(0.05)


# -- 4. whole segments, tags, preloads, suspend, callbacks, listeners ------------------------------


def test_prefixes_match_whole_segments(server: ServerProcess, key: rsa.RSAPrivateKey) -> None:
    a = token(key, prefix="org.teamA")
    n = uid()
    for id in (f"org.teamAB-{n}", f"org.teamA2.{n}", f"org.team-{n}", f"org-{n}"):
        answer = server.rpc("promise.create", {"id": id, "timeoutAt": LATER}, auth=a)
        assert forbidden(answer), (id, answer)
    for id in (f"org.teamA-{n}", f"org.teamA.{n}", f"org.teamA:{n}", f"org.teamA_{n}"):
        assert server.rpc("promise.create", {"id": id, "timeoutAt": LATER}, auth=a).status == 200
    # A prefix that ends in a separator continues with anything.
    dash = token(key, prefix="tA-")
    assert (
        server.rpc("promise.create", {"id": f"tA-{n}", "timeoutAt": LATER}, auth=dash).status == 200
    )


def test_sdk_shaped_ids_and_tags_work_for_a_tenant(
    server: ServerProcess, key: rsa.RSAPrivateKey
) -> None:
    """The ids and tags an SDK mints below a tenant's root id (SDK-WIRE.md §2.1)."""
    a = token(key, prefix="tA-")
    root = f"tA-wf-{uid()}"
    group = f"tA-workers-{uid()}"
    tags = {"resonate:origin": root, "resonate:branch": root, "resonate:parent": root}
    version = own_task(server, a, root, group, tags)
    children = [
        (f"{root}:1", {**tags, "resonate:scope": "local"}),
        (f"{root}:2", {**tags, "resonate:branch": f"{root}:2", **target(group)}),
        (f"{root}:2.1", {**tags, "resonate:branch": f"{root}:2", "resonate:parent": f"{root}:2"}),
        (f"{root}:d0123456789abcdef", {**tags, "resonate:branch": f"{root}:d0123456789abcdef"}),
    ]
    for id, child_tags in children:
        action = create_action({"id": id, "timeoutAt": LATER, "tags": child_tags})
        fenced = server.rpc(
            "task.fence", {"id": root, "version": version, "action": action}, auth=a
        )
        assert fenced.status == 200, (id, fenced)
    suspended = server.rpc(
        "task.suspend",
        {
            "id": root,
            "version": version,
            "actions": [
                {
                    "kind": "promise.register_callback",
                    "head": {},
                    "data": {"awaited": f"{root}:2", "awaiter": root},
                }
            ],
        },
        auth=a,
    )
    assert suspended.status == 200, suspended
    listener = {"awaited": f"{root}:1", "address": f"poll://uni@{group}/w1"}
    assert server.rpc("promise.register_listener", listener, auth=a).status == 200


def test_branch_tags_and_preloads_stay_in_the_tenant(
    server: ServerProcess, key: rsa.RSAPrivateKey
) -> None:
    admin = token(key, role="admin")
    n = uid()
    branch = f"org{n}"  # one segment above both teams
    # A tenant may not name a branch, origin or parent outside its prefix...
    for tag in ("resonate:branch", "resonate:origin", "resonate:parent"):
        data = {"id": f"{branch}.teamA-r", "timeoutAt": LATER, "tags": {tag: branch}}
        answer = server.rpc("promise.create", data, auth=token(key, prefix=f"{branch}.teamA"))
        assert forbidden(answer), (tag, answer)
    # ...and a preload never shows another tenant's promise, however the tags were written
    # (here by an operator, as before this rule existed).
    a = token(key, prefix=f"{branch}.teamA")
    tags = {"resonate:branch": branch}
    server.ok("promise.create", {"id": f"{branch}.teamB-p", "timeoutAt": LATER, "tags": tags},
              auth=admin)  # fmt: skip
    server.ok("promise.create", {"id": f"{branch}.teamA-s", "timeoutAt": LATER, "tags": tags},
              auth=admin)  # fmt: skip
    root = {
        "id": f"{branch}.teamA-r",
        "timeoutAt": LATER,
        "tags": {**tags, **target(f"{branch}.teamA-g")},
    }
    server.ok("promise.create", root, auth=admin)
    task = server.ok("task.get", {"id": root["id"]}, auth=a)["task"]
    claim = server.ok(
        "task.acquire",
        {"id": root["id"], "version": task["version"], "pid": "w", "ttl": 60_000},
        auth=a,
    )
    assert [p["id"] for p in claim["preload"]] == [f"{branch}.teamA-s"]
    version = claim["task"]["version"]
    action = create_action({"id": f"{branch}.teamA-c", "timeoutAt": LATER})
    fenced = server.ok(
        "task.fence", {"id": root["id"], "version": version, "action": action}, auth=a
    )
    assert [p["id"] for p in fenced["preload"]] == [f"{branch}.teamA-s"]

    # Suspending on another tenant's promise (same origin "org…" by the protocol's rule).
    callback = {"awaited": f"{branch}.teamB-p", "awaiter": root["id"]}
    suspend = {
        "id": root["id"],
        "version": version,
        "actions": [{"kind": "promise.register_callback", "head": {}, "data": callback}],
    }
    assert forbidden(server.rpc("task.suspend", suspend, auth=a))
    assert forbidden(server.rpc("promise.register_callback", callback, auth=a))
    backwards = {"awaited": f"{branch}.teamA-s", "awaiter": f"{branch}.teamB-p"}
    assert forbidden(server.rpc("promise.register_callback", backwards, auth=a))
    listener = {"awaited": f"{branch}.teamA-s", "address": f"poll://uni@{branch}.teamB-g/w1"}
    assert forbidden(server.rpc("promise.register_listener", listener, auth=a))


def test_batch_elements_are_authorized_and_redacted(
    server: ServerProcess, key: rsa.RSAPrivateKey
) -> None:
    a = token(key, prefix="tA-")
    n = uid()
    server.ok(
        "promise.create", {"id": f"tB-{n}", "timeoutAt": LATER}, auth=token(key, prefix="tB-")
    )
    requests = [
        {"kind": "promise.get", "head": {"corrId": "mine"}, "data": {"id": f"tA-{n}"}},
        {"kind": "promise.get", "head": {"corrId": "theirs"}, "data": {"id": f"tB-{n}"}},
        {
            "kind": "promise.settle",
            "head": {"corrId": "settle"},
            "data": {"id": f"tB-{n}", "state": "resolved"},
        },
    ]
    answer = server.ok("sustain.batch", {"requests": requests}, auth=a)
    statuses = {r["head"]["corrId"]: r["head"]["status"] for r in answer["responses"]}
    assert statuses == {"mine": 404, "theirs": 403, "settle": 403}


# -- the matrix: every kind, every touched field -----------------------------------------------

# Each "@N" in a case stands for one id or group: all of them the caller's own, or exactly one
# of them another tenant's.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("promise.get", {"id": "@0"}),
    ("promise.create", {"id": "@0", "timeoutAt": LATER}),
    ("promise.create", {"id": "@0", "timeoutAt": LATER, "tags": {"resonate:target": "poll://any@@1"}}),
    ("promise.create", {"id": "@1.x", "timeoutAt": LATER, "tags": {"resonate:origin": "@0"}}),
    ("promise.settle", {"id": "@0", "state": "resolved"}),
    ("promise.register_callback", {"awaited": "@0.a", "awaiter": "@1.b"}),
    ("promise.register_listener", {"awaited": "@0", "address": "poll://uni@@1/w"}),
    ("task.get", {"id": "@0"}),
    ("task.create", {"pid": "p", "ttl": 1000, "action": create_action(
        {"id": "@0", "timeoutAt": LATER, "tags": {"resonate:target": "poll://any@@1"}})}),
    ("task.acquire", {"id": "@0", "version": 0, "pid": "p", "ttl": 1000}),
    ("task.release", {"id": "@0", "version": 0}),
    ("task.fulfill", {"id": "@0", "version": 0, "action": {
        "kind": "promise.settle", "head": {}, "data": {"id": "@1", "state": "resolved"}}}),
    ("task.suspend", {"id": "@0", "version": 0, "actions": [{
        "kind": "promise.register_callback", "head": {},
        "data": {"awaited": "@1", "awaiter": "@2"}}]}),
    ("task.fence", {"id": "@0", "version": 0, "action": {
        "kind": "promise.settle", "data": {"id": "@1", "state": "resolved"}}}),
    ("task.fence", {"id": "@0", "version": 0, "action": create_action(
        {"id": "@1", "timeoutAt": LATER, "tags": {"resonate:target": "poll://any@@2",
                                                 "resonate:branch": "@1"}})}),
    ("task.heartbeat", {"pid": "p", "tasks": [
        {"id": "@0", "version": 0}, {"id": "@1", "version": 0}]}),
    ("task.halt", {"id": "@0"}),
    ("task.continue", {"id": "@0"}),
    ("schedule.get", {"id": "@0"}),
    ("schedule.create", {"id": "@0", "cron": "0 9 * * *", "promiseId": "@1.{{.timestamp}}",
                         "promiseTimeout": 1000, "promiseTags": {"resonate:target": "poll://any@@2"}}),
    ("schedule.delete", {"id": "@0"}),
]  # fmt: skip


def fill(value: Any, names: list[str]) -> Any:
    if isinstance(value, str):
        for i, name in enumerate(names):
            value = value.replace(f"@{i}", name)
        return value
    if isinstance(value, dict):
        return {k: fill(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, names) for v in value]
    return value


def placeholders(data: dict[str, Any]) -> int:
    text = str(data)
    return max(i + 1 for i in range(10) if f"@{i}" in text)


@pytest.mark.parametrize(
    ("kind", "data"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)]
)
def test_matrix(
    server: ServerProcess, key: rsa.RSAPrivateKey, kind: str, data: dict[str, Any]
) -> None:
    a = token(key, prefix="tA-")
    count = placeholders(data)
    n = uid()
    # Same origin for callbacks: every name of one case shares the first segment.
    own = [f"tA-{n}"] + [f"tA-{n}.{i}" for i in range(1, count)]
    answer = server.rpc(kind, fill(data, own), auth=a)
    assert answer.status not in (401, 403), (own, answer)
    for other in range(count):
        names = list(own)
        names[other] = f"tB-{n}" if other == 0 else f"tB-{n}.{other}"
        answer = server.rpc(kind, fill(data, names), auth=a)
        assert forbidden(answer), (names, answer)


@pytest.mark.parametrize(
    "kind", ["promise.search", "task.search", "schedule.search", "debug.snap", "no.such"]
)
def test_searches_and_debug_need_every_prefix(
    server: ServerProcess, key: rsa.RSAPrivateKey, kind: str
) -> None:
    assert forbidden(server.rpc(kind, {}, auth=token(key, prefix="tA-")))
    assert server.rpc(kind, {}, auth=token(key, prefix="")).status != 403 or kind == "debug.snap"


# -- 5. /metrics ----------------------------------------------------------------------------------


def test_metrics_need_an_operator_token(server: ServerProcess, key: rsa.RSAPrivateKey) -> None:
    assert server.client.get("/metrics").status_code == 401
    bad = {"authorization": "Bearer not-a-jwt"}
    assert server.client.get("/metrics", headers=bad).status_code == 401
    for claims in ({"prefix": "tA-"}, {}):
        bearer = {"authorization": f"Bearer {token(key, **claims)}"}
        denied = server.client.get("/metrics", headers=bearer)
        assert (denied.status_code, denied.text) == (403, "Forbidden"), claims
    for claims in ({"role": "admin"}, {"prefix": ""}):
        bearer = {"authorization": f"Bearer {token(key, **claims)}"}
        allowed = server.client.get("/metrics", headers=bearer)
        assert allowed.status_code == 200, claims
        assert "sustain_request_total" in allowed.text


def test_the_metrics_port_is_unauthenticated(spawn: Any, tmp_path: Any) -> None:
    port = free_port()
    server = spawn("--auth-publickey", "none", "--metrics-port", str(port))
    assert server.client.get("/metrics").status_code == 401
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).status_code == 200


# -- a real SDK worker under a tenant's token ------------------------------------------------------


def test_an_sdk_worker_with_a_tenant_token(server: ServerProcess, key: rsa.RSAPrivateKey) -> None:
    """Sustain's SDK mints child ids (``root:1``, ``root:2.1``), branch tags, a timer and an rpc
    to its own group below a tenant's root id: all inside the tenant's prefix."""
    group = f"tA-workers-{uid()}"
    with Sustain(url=server.url, group=group, token=token(key, prefix="tA-")) as sustain:

        @sustain.register
        def step(ctx: Context, x: int) -> int:
            return x + 1

        @sustain.register
        def child(ctx: Context, x: int) -> Any:
            y = yield ctx.run(step, x)
            return y * 10

        @sustain.register
        def workflow(ctx: Context, x: int) -> Any:
            a = yield ctx.run(step, x)
            b = yield ctx.rpc(child, a)
            yield ctx.sleep(timedelta(milliseconds=50))
            return [a, b]

        root = f"tA-wf-{uid()}"
        assert sustain.run(root, workflow, 1).result(timeout=60) == [2, 30]
    admin = token(key, role="admin")
    found = server.ok("promise.search", {"tags": {"resonate:origin": root}}, auth=admin)
    assert {p["id"] for p in found["promises"]} >= {root, f"{root}:1", f"{root}:2", f"{root}:2.1"}


def test_a_tenant_retries_its_own_executions_only(
    server: ServerProcess, key: rsa.RSAPrivateKey
) -> None:
    """sustain.retry touches its id and the new one (a derived id extends the tenant's)."""
    a, admin = token(key, prefix="tA-"), token(key, role="admin")
    own, other = f"tA-{uid()}", f"tB-{uid()}"
    for id in (own, other):
        server.ok("promise.create", {"id": id, "timeoutAt": LATER, "tags": target("tA-g")},
                  auth=admin)  # fmt: skip
        server.ok("promise.settle", {"id": id, "state": "rejected"}, auth=admin)
    assert server.ok("sustain.retry", {"id": own}, auth=a)["promise"]["id"] == f"{own}~retry-1"
    assert forbidden(server.rpc("sustain.retry", {"id": other}, auth=a))
    assert forbidden(server.rpc("sustain.retry", {"id": own, "newId": f"tB-{uid()}"}, auth=a))
