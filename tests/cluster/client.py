"""The cluster workload's client: ``python -m tests.cluster.client FIRST COUNT``.

Starts ``workflow(n)`` for n in FIRST..FIRST+COUNT-1 on the group ``callers`` (ids
``wf-<n>``), a few at a time, waits for every result and prints ``result <n> <value>``.
``SUSTAIN_URL`` names the replica it talks to.
"""

from __future__ import annotations

import os
import sys
import time

from sustain import Sustain

if __name__ == "__main__":
    first, count = int(sys.argv[1]), int(sys.argv[2])
    client = Sustain(url=os.environ["SUSTAIN_URL"], group="clients")
    handles = []
    for n in range(first, first + count):
        handles.append((n, client.options(target="callers").begin_rpc(f"wf-{n}", "workflow", n)))
        time.sleep(0.05)  # a steady load rather than one burst
    print("dispatched", flush=True)
    for n, handle in handles:
        print(f"result {n} {handle.result(timeout=90)}", flush=True)
    client.stop()
