"""Compute n! on the worker group: ``python examples/factorial/client.py 6``.

The id is ``factorial-{n}``: a second call with the same n gets the stored result at once,
and two clients calling it at the same time share one execution.
"""

from __future__ import annotations

import os
import sys

from sustain import Sustain

sustain = Sustain(url=os.environ.get("SUSTAIN_URL", "http://127.0.0.1:8001"),
                  group="factorial-client")  # fmt: skip

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    handle = sustain.options(target="factorial-worker").rpc(f"factorial-{n}", "factorial", n=n)
    print(f"factorial({n}) = {handle.result()}", flush=True)
    sustain.stop()
