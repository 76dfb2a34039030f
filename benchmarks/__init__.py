"""Benchmarks of the Sustain server (``make bench`` = ``python -m benchmarks``).

Every workload starts its own ``sustain serve`` process on a free 127.0.0.1 port with a
temporary SQLite file (``synchronous=FULL``, the default), drives it over HTTP from separate
processes or an in-process asyncio client, checks every answer, prints one JSON line per run
and a final table of medians.  See benchmarks/README.md for the workloads and the results.
"""
