"""Where a W1 step's CPU goes, by layer: ``python -m benchmarks.stepprofile [--server]``.

Runs W1 (one workflow of ``N`` sequential steps) embedded, or in server mode, under
**py-spy** (``record --format raw --threads``, 997 samples/s, only threads that are on a CPU:
py-spy leaves out idle threads) and **strace -c** (fsync count and time), and prints the
CPU milliseconds per step by layer: the process's CPU per step (``getrusage`` / ``/proc``)
split in the proportion of py-spy's samples.

A sample whose innermost frame is ``asyncio``, ``threading``, ``queue``, ``concurrent`` or
``selectors`` is a **hand-off** (running an event loop, waking or waiting for a thread),
whoever called it.  Any other sample is charged to the layer of its **innermost Sustain
frame**, so that ``cursor.execute`` (SQLite's C code, no frame of its own) counts for the
store line that called it; so do C calls made straight from a Sustain line
(``SimpleQueue.put``, a lock), which makes the hand-off figure a lower bound:

* ``sdk replay``: ``sustain/sdk/`` except the codec and the loop thread (the generator
  driver, futures, the local runner, ids);
* ``codec``: ``sustain/sdk/codec.py``, ``json``, ``base64``, ``msgspec`` frames;
* ``engine``: ``sustain/engine/``, ``sustain/protocol/``;
* ``store writer``: ``sustain/store/`` (the group-commit writer, its transactions and SQLite);
* ``runtime / server``: ``sustain/runtime/``, ``sustain/server/`` (HTTP, SSE, delivery);
* ``hand-offs``: ``asyncio``, ``threading``, ``queue``, ``concurrent``, ``selectors``:
  waking a thread or an event loop and the dispatch that follows;
* ``http client``: ``aiohttp``, ``httpx``, ``h11``, ``uvicorn``, ``httptools``;
* ``other``: everything else (the benchmark itself, logging, ...).

py-spy needs ptrace (root here) and is not a dependency of the project: ``make
bench-profile`` installs it once into ``.cache/py-spy/`` (a virtual environment of its own,
not the lock) and runs both modes; or give ``--py-spy PATH``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

LAYERS = (
    "sdk replay",
    "codec",
    "engine",
    "store writer",
    "runtime / server",
    "hand-offs",
    "http client",
    "other",
)

_RULES: tuple[tuple[str, str], ...] = (
    ("sustain/sdk/codec", "codec"),
    ("sustain/sdk/loop", "hand-offs"),
    ("sustain/sdk/", "sdk replay"),
    ("sustain/engine/", "engine"),
    ("sustain/protocol/", "engine"),
    ("sustain/store/", "store writer"),
    ("sustain/runtime/", "runtime / server"),
    ("sustain/server/", "runtime / server"),
)
# py-spy names the standard library's files relative to it ("(queue.py:133)",
# "(asyncio/base_events.py:1922)"), installed packages by their full path.
_STDLIB_HANDOFF = re.compile(r"\((asyncio/|threading\.py|queue\.py|concurrent/|selectors\.py)")
_CODEC = re.compile(r"[(/](json/|base64\.py|msgspec/)")
_HTTP = re.compile(r"[(/](aiohttp|httpx|httpcore|h11|uvicorn|httptools|yarl|multidict)/")


def classify(stack: list[str]) -> str:
    """The layer of one sample; ``stack``: its frames, outermost first, each as py-spy's
    ``function (path:line)``."""
    if stack and _STDLIB_HANDOFF.search(stack[-1]):
        return "hand-offs"  # running the loop, waking a thread: wherever it was called from
    for frame in reversed(stack):
        for marker, layer in _RULES:
            if marker in frame:
                return layer
        if _CODEC.search(frame):
            return "codec"
        if _HTTP.search(frame):
            return "http client"
    for frame in reversed(stack):
        if _STDLIB_HANDOFF.search(frame):
            return "hand-offs"
    return "other"


def parse_raw(text: str) -> tuple[Counter[str], Counter[str]]:
    """Samples per layer, and per innermost Sustain function (``name (path)``, with the
    innermost function below it when that is not Sustain's), of py-spy's ``--format raw``
    output (``frame;frame;... count``)."""
    layers: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        thread, *frames = stack.split(";")  # "thread (tid): name;frame;frame..."
        if not frames:
            continue
        layers[classify(frames)] += int(count)
        name = thread.split(": ", 1)[-1]
        inner = next((f for f in reversed(frames) if "sustain/" in f), "(no Sustain frame)")
        leaf = "" if "sustain/" in frames[-1] else f" -> {frames[-1].split('(')[0].strip()}"
        # Line numbers kept: the line tells a C call (SimpleQueue.put, cursor.execute) apart.
        where = inner.split("site-packages/")[-1]
        functions[f"[{name}] {where}{leaf}"] += int(count)
    return layers, functions


def _thread_cpu(pid: int) -> dict[int, float]:
    """On-CPU seconds of each thread of ``pid`` (``schedstat``: nanoseconds, exact, unlike
    the 10 ms ticks of ``stat``)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            out[int(task.name)] = int((task / "schedstat").read_text().split()[0]) / 1e9
    return out


def _thread_names(text: str) -> dict[int, str]:
    """tid -> thread name, from py-spy's raw lines ``thread (0x7f..|tid): name;...``."""
    names = {}
    for line in text.splitlines():
        head = line.split(";", 1)[0]
        match = re.match(r"thread \((\d+)\): (.*)", head)
        if match:
            names[int(match.group(1))] = match.group(2)
    return names


def _strace_fsyncs(path: Path) -> tuple[int, float]:
    """(calls, seconds) of fsync + fdatasync from ``strace -c`` output."""
    calls, seconds = 0, 0.0
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts and parts[-1] in ("fsync", "fdatasync") and len(parts) >= 5:
            seconds += float(parts[1])
            calls += int(parts[3])
    return calls, seconds


_CHILD = """
import json, resource, sys, time
from benchmarks.sdk_modes import open_mode
steps, mode_name = int(sys.argv[1]), sys.argv[2]
with open_mode(mode_name) as mode:
    print("ready", flush=True)
    sys.stdin.readline()  # the profilers attach here
    parts0, t0 = mode.cpu_parts(), time.perf_counter()
    result = mode.call(f"w1-{time.time_ns()}", "chain", steps).result(timeout=600)
    elapsed = time.perf_counter() - t0
    parts = {k: v - parts0[k] for k, v in mode.cpu_parts().items()}
    pids = {"caller": __import__("os").getpid()}
    if mode_name == "server":
        pids.update(server=mode.server.pid, worker=mode.worker.pid)
    print(json.dumps({"seconds": elapsed, "cpu": parts, "result": result, "pids": pids}),
          flush=True)
    sys.stdin.readline()  # the profilers detach first
"""


def _stop(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def profile(steps: int, mode: str, py_spy: str, fsyncs: bool = False) -> dict[str, object]:
    out = Path(tempfile.mkdtemp(prefix="sustain-bench-profile-"))
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(steps), mode],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    spies: list[subprocess.Popen[bytes]] = []
    try:
        assert child.stdin is not None and child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("the W1 process did not start")
        pids = [child.pid]
        if mode == "server":
            pids += _children_of(child.pid)
        for pid in pids:
            spies.append(subprocess.Popen(
                [py_spy, "record", "--pid", str(pid), "--rate", "997", "--threads",
                 "--format", "raw", "--output", str(out / f"{pid}.raw"), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            if fsyncs:
                # Attached strace stops the process at every syscall (no seccomp filter on
                # an attach): it slows the run, so it is a separate, optional pass.
                spies.append(subprocess.Popen(
                    ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-p", str(pid),
                     "-o", str(out / f"{pid}.strace")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                ))  # fmt: skip
        time.sleep(1.5)  # both attached
        threads0 = {pid: _thread_cpu(pid) for pid in pids}
        child.stdin.write("go\n")
        child.stdin.flush()
        result = json.loads(child.stdout.readline())
        threads1 = {pid: _thread_cpu(pid) for pid in pids}
        for spy in spies:
            _stop(spy)
        child.stdin.write("done\n")
        child.stdin.flush()
        child.wait(timeout=60)
        per_process: dict[str, object] = {}
        names = {pid: name for name, pid in result["pids"].items()}
        for pid in pids:
            raw = out / f"{pid}.raw"
            text = raw.read_text() if raw.exists() else ""
            samples, functions = parse_raw(text)
            tnames = _thread_names(text)
            by_thread: dict[str, float] = {}
            for tid, seconds in threads1[pid].items():
                spent = seconds - threads0[pid].get(tid, 0.0)
                label = re.sub(r":/.*", "", tnames.get(tid, f"thread {tid}"))
                by_thread[label] = by_thread.get(label, 0.0) + spent * 1000 / steps
            name = names.get(pid, "caller" if pid == child.pid else str(pid))
            cpu_ms = float(result["cpu"].get(name, 0.0)) * 1000 / steps
            total = sum(samples.values()) or 1
            trace = out / f"{pid}.strace"
            calls, fsync_s = _strace_fsyncs(trace) if trace.exists() else (0, 0.0)
            per_process[name] = {
                "cpu_ms_per_step": cpu_ms,
                "layers_ms_per_step": {k: cpu_ms * samples[k] / total for k in LAYERS},
                "samples": total,
                "threads_ms_per_step": dict(sorted(by_thread.items(), key=lambda kv: -kv[1])),
                "top": [(f, round(cpu_ms * n / total, 4)) for f, n in functions.most_common(15)],
                "fsyncs_per_step": calls / steps if fsyncs else None,
                "fsync_ms_per_step": fsync_s * 1000 / steps,
            }
        return {"mode": mode, "steps": steps, "ms_per_step": result["seconds"] * 1000 / steps,
                "result_ok": result["result"] == steps, "processes": per_process}  # fmt: skip
    finally:
        for spy in spies:
            _stop(spy)
        _stop(child)
        shutil.rmtree(out, ignore_errors=True)


def _children_of(pid: int) -> list[int]:
    """The Sustain server and worker started by the W1 process (their ``python`` children;
    the server may sit under strace-free ``sustain`` entry points)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(c) for c in children]
    return found


def _print(report: dict[str, object]) -> None:
    processes = report["processes"]
    assert isinstance(processes, dict)
    print(f"\nW1 {report['mode']}, {report['steps']:,} steps: {report['ms_per_step']:.3f} ms/step"
          f" (wall), load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    names = list(processes)
    print("| layer | " + " | ".join(f"{n} CPU ms/step" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for layer in LAYERS:
        cells = [f"{processes[n]['layers_ms_per_step'][layer]:.3f}" for n in names]
        print(f"| {layer} | " + " | ".join(cells) + " |")
    print("| **total CPU** | " + " | ".join(
        f"**{processes[n]['cpu_ms_per_step']:.3f}**" for n in names) + " |")  # fmt: skip
    if processes[names[0]]["fsyncs_per_step"] is not None:
        print("| fsyncs per step (ms) | " + " | ".join(
            f"{processes[n]['fsyncs_per_step']:.2f} ({processes[n]['fsync_ms_per_step']:.2f})"
            for n in names) + " |")  # fmt: skip
    print("| py-spy samples | " + " | ".join(str(processes[n]["samples"]) for n in names) + " |")
    for name in names:
        threads = processes[name]["threads_ms_per_step"]
        print(f"\n{name}: on-CPU ms/step per thread (schedstat): " + ", ".join(
            f"{thread} {ms:.3f}" for thread, ms in threads.items() if ms >= 0.0005))  # fmt: skip
    for name in names:
        print(f"\n{name}: innermost Sustain function of the samples, CPU ms/step")
        for function, ms in processes[name]["top"]:
            print(f"  {ms:.3f}  {function}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.stepprofile",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--server", action="store_true", help="server mode instead of embedded")
    parser.add_argument(
        "--fsyncs",
        action="store_true",
        help="also count fsyncs with an attached strace (slows the run)",
    )
    cached = Path(__file__).resolve().parent.parent / ".cache" / "py-spy" / "bin" / "py-spy"
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(cached),
                        help="the py-spy binary (default: on PATH, else .cache/py-spy/, where "
                        "`make bench-profile` installs it)")  # fmt: skip
    args = parser.parse_args(argv)
    report = profile(args.steps, "server" if args.server else "embedded", args.py_spy, args.fsyncs)
    print(json.dumps(report))
    _print(report)
    return 0 if report["result_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
