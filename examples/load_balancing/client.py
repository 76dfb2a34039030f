"""Fire-and-forget calls to the group ``workers``; the client exits at once.

    python examples/load_balancing/client.py [COUNT] [MIN_COST] [MAX_COST]   # 1, 1, 10

Each call gets a fresh id and a random cost in seconds.  ``begin_rpc`` returns a handle
without waiting for the result, which lives on in the store after this process exits
(``sustain promises get <id>``).
"""

from __future__ import annotations

import os
import random
import sys
import uuid

from sustain import Sustain

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"), group="client")

if __name__ == "__main__":
    count, low, high = (int(a) for a in (sys.argv[1:] + ["1", "1", "10"][len(sys.argv) - 1 :]))
    for _ in range(count):
        id, cost = str(uuid.uuid4()), random.randint(low, high)
        sustain.options(target="workers").begin_rpc(id, "compute_something", id, cost)
        print(f"dispatched {id} (cost {cost} s)", flush=True)
    sustain.stop()
