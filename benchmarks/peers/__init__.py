"""Issue 7's peer benchmarks (``make bench-peers`` = ``python -m benchmarks.peers``): the SDK
workloads W1-W4 on DBOS (SQLite and PostgreSQL) and Restate, measured in the same run as
Sustain embedded and Sustain server, with the same checks and a table of medians and
Sustain ÷ peer ratios.

Each peer lives in its own pinned installation under ``.cache/bench-peers/`` (``envs.py``)
and its workload code is the peer's own idiom (``dbos_app.py``, ``restate_app.py``: those
two run in the peers' virtual environments, not in the project's).  The runner in this
process starts them, collects their raw results, checks them (``workloads.py``) and prints
the tables (``table.py``).  Sustain's rows come from ``benchmarks/workflows.py`` itself.
"""
