"""The Python SDK: ``Sustain`` (client.py), ``Context`` (context.py), the replay runtime
(replay.py, runner.py), workers (worker.py) and the two networks (local.py: embedded;
remote.py: HTTP + SSE) behind the ``Network`` seam (network.py).  The public surface is
re-exported by ``sustain`` itself."""
