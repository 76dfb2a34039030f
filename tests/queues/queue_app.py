"""The worker app of the queue tests: ``job`` records when it starts and ends.

``sustain worker tests.queues.queue_app:sustain`` serves ``QUEUE_GROUP`` with a lease of
``QUEUE_TTL`` seconds.  Each call of ``job(name, key, hold)`` appends ``start <name> <key>
<time> <pid>`` to ``QUEUE_LOG``, sleeps ``hold`` seconds (forever in a process started with
``QUEUE_HANG=1``: the test SIGKILLs it) and appends ``end <name> <key> <time> <pid>``.
"""

from __future__ import annotations

import os
import time

from sustain import Context, Sustain

sustain = Sustain(
    group=os.environ.get("QUEUE_GROUP", "queues"),
    ttl=float(os.environ.get("QUEUE_TTL", "5")),
)


def _log(event: str, name: str, key: str) -> None:
    # One write per line on an O_APPEND file: lines of concurrent workers never interleave.
    line = f"{event} {name} {key or '-'} {time.time():.6f} {os.getpid()}\n"
    fd = os.open(os.environ["QUEUE_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@sustain.register
def job(ctx: Context, name: str, key: str, hold: float) -> str:
    _log("start", name, key)
    time.sleep(3600 if os.environ.get("QUEUE_HANG") == "1" else hold)
    _log("end", name, key)
    return name
