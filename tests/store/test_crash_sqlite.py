"""Crash: every write acknowledged by SqliteStore survives SIGKILL of its process.

A child process inserts promises from many threads and prints each id only after ``run``
returned (the acknowledgement).  The parent kills it with SIGKILL mid-load, reopens the file
and checks that every acknowledged promise is there, unchanged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sustain.protocol.records import Promise, Value
from sustain.store.sqlite import SqliteStore
from tests.store.store_builders import promise

CHILD = textwrap.dedent(
    """
    import sys, threading
    from sustain.protocol.records import Promise, Value
    from sustain.store.sqlite import SqliteStore

    store = SqliteStore(sys.argv[1])
    out = threading.Lock()
    print("ready", flush=True)

    def expected(id):
        return Promise(id=id, state="pending", param=Value(headers={}, data=id),
                       value=Value(), tags={"n": id}, timeoutAt=10**12, createdAt=0)

    def worker(k):
        i = 0
        while True:
            id = f"w{k}.{i}"
            store.run(lambda tx, id=id: tx.insert_promise(expected(id)))
            with out:
                sys.stdout.write(id + "\\n")
                sys.stdout.flush()
            i += 1

    async def volatile(k):
        # Answered at COMMIT, before the WAL sync: a process crash still loses none of them.
        i = 0
        while True:
            id = f"v{k}.{i}"
            await store.run_async(lambda tx, id=id: tx.insert_promise(expected(id)), False)
            with out:
                sys.stdout.write(id + "\\n")
                sys.stdout.flush()
            i += 1

    if sys.argv[2] == "volatile":
        import asyncio

        async def main():
            await asyncio.gather(*(volatile(k) for k in range(16)))

        asyncio.run(main())
    for k in range(16):
        threading.Thread(target=worker, args=(k,), daemon=True).start()
    threading.Event().wait()
    """
)


def expected(id: str) -> Promise:
    return promise(id, param=Value(headers={}, data=id), tags={"n": id}, timeout_at=10**12)


@pytest.mark.parametrize("ack", ["durable", "volatile"])
def test_acknowledged_inserts_survive_sigkill(db_path: str, ack: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_path, ack],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert child.stdout is not None
    acked: list[str] = []
    try:
        assert child.stdout.readline() == "ready\n"
        while len(acked) < 400:
            line = child.stdout.readline()
            assert line.endswith("\n"), "child died before the kill"
            acked.append(line[:-1])
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(60)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with SqliteStore(db_path) as store:
        found = store.run(lambda tx: {p.id: p for p in tx.all_promises()})
    missing = [id for id in acked if id not in found]
    assert missing == []
    assert all(found[id] == expected(id) for id in acked)
    # Nothing else was written but whole, well-formed promises of the same load.
    assert all(p == expected(id) for id, p in found.items())
