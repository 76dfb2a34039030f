"""The worker process of the SDK workloads in server mode.

Started as ``sustain worker benchmarks.sdk_worker:sustain --group bench`` with
``SUSTAIN_URL`` pointing at the benchmark's server; it serves the functions of
``sdk_app.py``.
"""

from __future__ import annotations

import os

from benchmarks.sdk_app import GROUP, register
from sustain import Sustain

sustain = register(Sustain(url=os.environ["SUSTAIN_URL"], group=GROUP))
