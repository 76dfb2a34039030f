"""Programs written against the official Python SDK (resonate-sdk 0.8.1), run unmodified.

Run with the Python 3.12 venv of ``tests/interop/env.py`` (never imported by pytest, which runs
3.11).  The only thing that points them at Sustain is ``Resonate(url=...)``.

    official_py.py worker  --url U --group G [--pid P] [--ttl S]
    official_py.py cases   --url U --group G --plan JSON
    official_py.py resolve --url U --id ID --value JSON
    official_py.py codec   < job.json
    official_py.py validate < captured.jsonl

``worker`` serves the registered functions in group G until SIGTERM.  ``cases`` joins group G
too, runs every case of the plan concurrently and prints one ``RESULT {json}`` line per case
as it finishes.  ``resolve`` settles a promise (the human of a human-in-the-loop workflow).
``codec`` encodes and decodes values with the SDK's own codec, ``validate`` parses captured
server answers with the SDK's own structs (neither talks to a server).
Side effects are appended, one line each, to the file named by ``INTEROP_COUNTS`` so tests
can count how often a step really ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from datetime import timedelta
from typing import Any

import msgspec
from resonate.codec import Codec, NoopEncryptor
from resonate.context import Context
from resonate.error import ServerError
from resonate.resonate import Resonate
from resonate.retry import Never
from resonate.types import Value


def record(event: str) -> None:
    path = os.environ.get("INTEROP_COUNTS")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (event + "\n").encode())
        finally:
            os.close(fd)


# -- leaves ------------------------------------------------------------------------------------


async def step(ctx: Context, tag: str, n: int) -> int:
    record(f"step:{tag}:{n}")
    return n * 10


async def clock_ms(ctx: Context) -> int:
    return int(time.time() * 1000)


async def write_marker(ctx: Context, path: str, text: str) -> None:
    # written whole then renamed, so the test never reads a half-written id
    with open(path + ".tmp", "w") as out:  # noqa: ASYNC230 (a few bytes)
        out.write(text)
    os.replace(path + ".tmp", path)


async def audit(ctx: Context, text: str) -> str:
    record(f"audit:{text}")
    return f"logged:{text}"


async def square(ctx: Context, i: int) -> int:
    return i * i


async def py_add(ctx: Context, a: int, b: int) -> int:
    return a + b


async def py_greet(ctx: Context, payload: Any) -> dict[str, Any]:
    return {"got": payload, "by": "official-py"}


async def py_fail(ctx: Context, message: str) -> None:
    raise ValueError(message)


async def tick(ctx: Context, label: str) -> str:
    record(f"tick:{label}")
    return label


async def counted(ctx: Context, tag: str) -> str:
    record(f"crash:{tag}")
    return tag


async def slow(ctx: Context, tag: str) -> str:
    record(f"crash:{tag}-start")
    if os.environ.get("INTEROP_HANG") == "1":
        await asyncio.sleep(3600)  # this worker is SIGKILLed here
    record(f"crash:{tag}-done")
    return tag


async def sleepy(ctx: Context, tag: str, seconds: float) -> str:
    record(f"sleepy:{tag}:start")
    await asyncio.sleep(seconds)
    record(f"sleepy:{tag}:done")
    return tag


# -- workflows ---------------------------------------------------------------------------------


async def fragile_step(ctx: Context, tag: str, n: int, fixed: str) -> int:
    record(f"step:{tag}:{n}")
    if not os.path.exists(fixed):  # noqa: ASYNC240 (one stat)
        raise ValueError(f"step {n} of {tag} is broken until {fixed} exists")
    return n * 10


async def fragile(ctx: Context, tag: str, fixed: str) -> list[int]:
    """Step 2 fails, not retried, until the file ``fixed`` exists (Sustain's retry test)."""
    a = await ctx.run(step, tag, 1)
    b = await ctx.options(retry_policy=Never()).run(fragile_step, tag, 2, fixed)
    c = await ctx.run(step, tag, 3)
    return [a, b, c]


async def long_step(ctx: Context, tag: str, seconds: float) -> str:
    return await ctx.run(sleepy, tag, seconds)


async def two_steps(ctx: Context, tag: str, n: int) -> list[int]:
    a = await ctx.run(step, tag, n)
    b = await ctx.run(step, tag, n + 1)
    return [a, b]


async def two_steps_around_sleep(ctx: Context, tag: str, seconds: float) -> list[int]:
    a = await ctx.run(step, tag, 1)
    await ctx.sleep(timedelta(seconds=seconds))
    b = await ctx.run(step, tag, 2)
    return [a, b]


async def call_remote(ctx: Context, target: str, a: int, b: int) -> int:
    return await ctx.options(target=target).rpc("py_add", a, b)


async def sleeper(ctx: Context, seconds: float) -> int:
    before = await ctx.run(clock_ms)
    await ctx.sleep(timedelta(seconds=seconds))
    after = await ctx.run(clock_ms)
    return after - before


async def approval(ctx: Context, marker: str) -> str:
    promise = ctx.promise()
    promise_id = await promise.id()
    await ctx.run(write_marker, marker, promise_id)
    answer = await promise
    return f"approved:{answer}"


async def with_detached(ctx: Context, text: str) -> str:
    return await ctx.detached("audit", text)


async def fan_out(ctx: Context, target: str, n: int) -> int:
    futures = [ctx.options(target=target).rpc("square", i) for i in range(n)]
    total = 0
    for future in futures:
        total += await future
    return total


async def crashy(ctx: Context) -> list[str]:
    a = await ctx.run(counted, "a")
    b = await ctx.run(slow, "b")
    c = await ctx.run(counted, "c")
    return [a, b, c]


async def call_sustain(ctx: Context, target: str, payload: Any) -> dict[str, Any]:
    ok = await ctx.options(target=target).rpc("sus_echo", payload)
    try:
        await ctx.options(target=target).rpc("sus_fail", "boom from a Sustain worker")
        error = None
    except Exception as exc:  # the rejection arrives as the SDK's ApplicationError
        error = {"type": type(exc).__name__, "message": str(exc)}
    return {"ok": ok, "error": error}


async def call_sustain_workflow(ctx: Context, target: str, n: int, py_target: str) -> Any:
    return await ctx.options(target=target).rpc("sus_workflow", n, py_target, "py_add")


def register(resonate: Resonate) -> None:
    for fn in (step, clock_ms, write_marker, audit, square, py_add, py_greet, tick, counted,
               slow, sleepy, long_step, two_steps, call_remote, sleeper, approval, with_detached,
               fan_out, crashy, call_sustain, call_sustain_workflow,
               two_steps_around_sleep, fragile_step, fragile):  # fmt: skip
        resonate.register(fn)
    resonate.register(py_fail, retry_policy=Never())


def connect(args: argparse.Namespace) -> Resonate:
    resonate = Resonate(
        url=args.url,
        group=args.group,
        pid=args.pid,
        ttl=timedelta(seconds=args.ttl),
    )
    register(resonate)
    return resonate


# -- cases run by `cases` ----------------------------------------------------------------------


async def case_call(resonate: Resonate, case: dict[str, Any]) -> Any:
    handle_of = resonate.options(target=case["target"]) if case.get("target") else resonate
    if case["op"] == "get":  # the raw client: raises at once on a refused request
        found = await resonate.promises.get(case["id"])
        return {"id": found.id, "state": found.state}
    if case["op"] == "run":
        handle = handle_of.run(case["id"], case["func"], *case.get("args", []))
    else:
        handle = handle_of.rpc(case["id"], case["func"], *case.get("args", []))
    value = await handle.result()
    if case.get("then_get"):  # a detached child: wait for its own result by id
        value = {"id": value, "result": await (await resonate.get(value)).result()}
    return value


async def case_schedule(resonate: Resonate, case: dict[str, Any]) -> Any:
    sid = case["id"]
    # a schedule that fires every second (Sustain's cron takes a leading seconds field)
    await resonate.options(target=case["target"]).schedule(
        sid, "* * * * * *", "tick", args=(sid,), promise_timeout=timedelta(minutes=5)
    )
    got = await resonate.schedules.get(sid)
    found = await resonate.schedules.search(tags=None, limit=100, cursor=None)
    fired: list[str] = []
    deadline = time.monotonic() + 60
    while not fired and time.monotonic() < deadline:
        page = await resonate.promises.search(
            state="resolved", tags={"resonate:schedule": sid}, limit=10, cursor=None
        )
        fired = [p.id for p in page.promises]
        if not fired:
            await asyncio.sleep(0.2)
    values = [(await resonate.promises.get(pid)).value.data for pid in fired]
    # a second schedule exercises the raw client's create and delete
    raw = f"{sid}-raw"
    created = await resonate.schedules.create(
        id=raw, cron="0 0 1 1 *", promise_id="{{.id}}-{{.timestamp}}", promise_timeout=60_000,
        promise_param=Value(data={"func": "tick", "args": [raw], "kwargs": {}, "version": 1}),
        promise_tags={"resonate:target": f"poll://any@{case['target']}"},
    )  # fmt: skip
    await resonate.schedules.delete(raw)
    await resonate.schedules.delete(sid)
    missing = []
    for gone in (sid, raw):
        try:
            await resonate.schedules.get(gone)
        except ServerError as exc:
            missing.append(exc.code)
    return {
        "get": {"id": got.id, "cron": got.cron, "created_at": got.created_at},
        "search_ids": sorted(s.id for s in found.schedules),
        "fired": fired,
        "values": values,
        "raw_created": created.id,
        "after_delete": missing,
    }


async def run_case(resonate: Resonate, case: dict[str, Any]) -> None:
    try:
        if case["op"] == "schedule":
            value = await case_schedule(resonate, case)
        else:
            value = await case_call(resonate, case)
        result = {"name": case["name"], "ok": True, "value": value}
    except Exception as exc:
        result = {"name": case["name"], "ok": False, "type": type(exc).__name__, "error": str(exc)}
    print("RESULT " + json.dumps(result), flush=True)


async def cases(args: argparse.Namespace) -> None:
    resonate = connect(args)
    plan = json.loads(args.plan)
    await asyncio.gather(*(run_case(resonate, case) for case in plan))
    await resonate.stop()


async def worker(args: argparse.Namespace) -> None:
    resonate = connect(args)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    print(f"WORKER {args.group}", flush=True)
    await done.wait()
    await resonate.stop()


async def resolve(args: argparse.Namespace) -> None:
    resonate = Resonate(url=args.url, sources=[])  # send-only: a human's one-off script
    settled = await resonate.promises.resolve(args.id, Value(data=json.loads(args.value)))
    print("RESOLVED " + settled.state, flush=True)
    await resonate.stop()


def codec_check() -> None:
    """Encode and decode with the SDK's own codec: ``{values, decode, error, decode_errors}``
    on stdin, ``CODEC {encoded, decoded, error, decoded_errors}`` on stdout."""
    codec = Codec(NoopEncryptor())
    job = json.loads(sys.stdin.read())

    def plain(value: Value) -> dict[str, Any]:
        return {k: v for k, v in msgspec.structs.asdict(value).items() if v is not None}

    def error_of(value: dict[str, Any]) -> dict[str, str]:
        exc = codec.decode_error(Value(**value))
        return {"type": type(exc).__name__, "message": str(exc)}

    out = {
        "encoded": [plain(codec.encode(v)) for v in job["values"]],
        "decoded": [codec.decode(Value(**v)) for v in job["decode"]],
        "error": plain(codec.encode(ValueError(job["error"]))),
        "decoded_errors": [error_of(v) for v in job["decode_errors"]],
    }
    print("CODEC " + json.dumps(out), flush=True)


def validate_check() -> None:
    """Parse captured answers and push messages the way the SDK does (its response and
    message structs, its page structs), and every record strictly (where the SDK would drop a
    bad preload or search record silently).  JSONL on stdin as for ``ts/validate.mjs``;
    ``VALIDATE {checked, failures}`` on stdout."""
    from resonate import send
    from resonate.transport import Message, Response
    from resonate.types import PromiseRecord, ScheduleRecord

    pages: dict[str, Any] = {
        "promise.get": send._PromisePage, "promise.create": send._PromisePage,
        "promise.settle": send._PromisePage, "promise.register_listener": send._PromisePage,
        "promise.register_callback": send._PromisePage, "task.fulfill": send._PromisePage,
        "task.create": send._TaskAcquirePage, "task.acquire": send._TaskAcquirePage,
        "task.fence": send._TaskFencePage, "schedule.get": send._SchedulePage,
        "schedule.create": send._SchedulePage,
    }  # fmt: skip
    failures: list[dict[str, Any]] = []
    checked = 0
    for index, line in enumerate(sys.stdin.read().splitlines()):
        if not line.strip():
            continue
        checked += 1
        entry = json.loads(line)
        try:
            if "message" in entry:
                msgspec.json.decode(json.dumps(entry["message"]), type=Message)
                continue
            response = msgspec.json.decode(json.dumps(entry["response"]), type=Response)
            data, kind, status = response.data, response.kind, response.head.status
            if status >= 400:  # the SDK reads an error's message from a string
                assert isinstance(data, str), f"error data is not a string: {data!r}"
                continue
            if kind == "task.fence" and data["action"]["head"]["status"] != 200:
                continue
            if kind in pages:
                send._decode_or_raise(data, pages[kind], kind)
            records = [*data.get("preload", []), *data.get("promises", [])]
            for record in records:
                msgspec.convert(record, PromiseRecord)
            for record in data.get("schedules", []):
                msgspec.convert(record, ScheduleRecord)
        except Exception as exc:
            failures.append({"index": index, "why": f"{type(exc).__name__}: {exc}"})
    print("VALIDATE " + json.dumps({"checked": checked, "failures": failures}), flush=True)


def main() -> None:
    if sys.argv[1:] == ["codec"]:
        codec_check()
        return
    if sys.argv[1:] == ["validate"]:
        validate_check()
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["worker", "cases", "resolve"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--group", default="default")
    parser.add_argument("--pid", default=None)
    parser.add_argument("--ttl", type=float, default=60.0)
    parser.add_argument("--plan", default="[]")
    parser.add_argument("--id")
    parser.add_argument("--value")
    args = parser.parse_args()
    command = {"worker": worker, "cases": cases, "resolve": resolve}[args.command]
    asyncio.run(command(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
