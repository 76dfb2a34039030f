"""Call ``sleeping_workflow`` on the group ``workers`` and print its result.

    python examples/durable_sleep/client.py [SECS] [ID]      # 5, sleep-workflow-1

The id makes the call idempotent: run again while it sleeps and it re-attaches to the same
execution; run again once it is done and the stored result comes back at once.
"""

from __future__ import annotations

import os
import sys

from sustain import Sustain

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), group="client")

if __name__ == "__main__":
    secs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    id = sys.argv[2] if len(sys.argv) > 2 else "sleep-workflow-1"
    # the call's deadline (one day by default) must outlast the sleep
    calls = sustain.options(target="workers", timeout=secs + 86400)
    print(calls.rpc(id, "sleeping_workflow", secs).result(), flush=True)
    sustain.stop()
