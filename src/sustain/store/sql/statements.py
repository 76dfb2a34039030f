"""The SQL both stores send to the letter: column lists and the whole-store views.

Both schemas have the same tables and columns in the same order (schema/0001_init.sql,
schema/postgres/0001_init.sql), and rows.py reads and writes rows in that order.  Statements
that differ (placeholders, locking, SQLite's ``INDEXED BY``) are each store's own
(sqlite/statements.py, postgres/statements.py).
"""

from __future__ import annotations

P_COLS = (
    "id, state, param_headers, param_data, value_headers, value_data, tags,"
    " timeout_at, created_at, settled_at"
)
T_COLS = "id, state, version, timeout_type, timeout_at, pid, ttl"
S_COLS = (
    "id, cron, promise_id, promise_timeout, promise_param_headers, promise_param_data,"
    " promise_tags, created_at, next_run_at, last_run_at"
)

# -- whole-store views (tests, the oracle comparisons, the UI) --------------------------------
P_ALL = f"SELECT {P_COLS} FROM promises ORDER BY id"
T_ALL = f"SELECT {T_COLS} FROM tasks ORDER BY id"
C_ALL = "SELECT awaited, awaiter, ready FROM callbacks ORDER BY awaiter, awaited"
L_ALL = "SELECT promise_id, address FROM listeners ORDER BY promise_id, address"
X_ALL = "SELECT task_id, version, address FROM outgoing_execute ORDER BY task_id"
U_ALL = "SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address"

HAS_OUTBOX = (
    "SELECT EXISTS (SELECT 1 FROM outgoing_execute) OR EXISTS (SELECT 1 FROM outgoing_unblock)"
)
# Each MIN walks its partial or plain index: four index seeks.
NEXT_DEADLINE = (
    "SELECT"
    " (SELECT min(timeout_at) FROM promises WHERE state = 'pending' AND target IS NOT NULL),"
    " (SELECT min(timeout_at) FROM tasks WHERE timeout_at IS NOT NULL),"
    " (SELECT min(next_run_at) FROM schedules),"
    " (SELECT min(wake_at) FROM queues)"
)
# What ``reset`` empties; fixed names, never input.
TABLES = (
    "promises",
    "tasks",
    "callbacks",
    "listeners",
    "outgoing_execute",
    "outgoing_unblock",
    "schedules",
    "queues",
    "queue_entries",
    "promise_status",
)
