"""The SQL of ``SqliteTx`` (tx.py), as module constants: sqlite3's statement cache keys on
the text, so each runs prepared after its first use.  Columns and the whole-store views are
shared with PostgreSQL (sql/statements.py)."""

from __future__ import annotations

from sustain.store.sql.rows import json_text
from sustain.store.sql.search import Dialect
from sustain.store.sql.statements import P_COLS, S_COLS, T_COLS

# -- promises ---------------------------------------------------------------------------------
P_GET = f"SELECT {P_COLS} FROM promises WHERE id = ?"
P_INSERT = (
    f"INSERT INTO promises ({P_COLS}, target, branch, origin)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Only the fields a settlement changes: leaving tags and timeout_at out of the SET spares
# SQLite the maintenance of the indexes on them.
P_UPDATE = (
    "UPDATE promises SET state = ?, value_headers = ?, value_data = ?, settled_at = ? WHERE id = ?"
)
P_BRANCH = f"SELECT {P_COLS} FROM promises WHERE branch = ? ORDER BY id"
# INDEXED BY: without statistics the planner prefers walking the primary key for ORDER BY id,
# which reads every promise; the due set is small, sorting it is cheap.
P_DUE = (
    f"SELECT {P_COLS} FROM promises INDEXED BY promises_due"
    " WHERE state = 'pending' AND target IS NOT NULL AND timeout_at <= ? ORDER BY id"
)
P_BY_IDS = f"SELECT {P_COLS} FROM promises WHERE id IN (SELECT value FROM json_each(?))"
# "filter ⊆ tags": the filter's pairs found in the row's tags, counted.  Keys are unique on
# both sides (JSON objects from dicts), so the count equals the filter's size exactly when
# every pair is present.
TAGS_MATCH = (
    "(SELECT count(*) FROM json_each({col}) AS t JOIN json_each(:tags) AS f"
    " ON f.key = t.key AND f.value = t.value) = :ntags"
)

# -- tasks ------------------------------------------------------------------------------------
T_GET = f"SELECT {T_COLS} FROM tasks WHERE id = ?"
# Upserts rather than INSERT OR REPLACE: an update in place, where REPLACE deletes the row
# (and its index entries) and inserts it again.
T_PUT = (
    f"INSERT INTO tasks ({T_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
    " state = excluded.state, version = excluded.version, timeout_type = excluded.timeout_type,"
    " timeout_at = excluded.timeout_at, pid = excluded.pid, ttl = excluded.ttl"
)
T_DUE = f"SELECT {T_COLS} FROM tasks INDEXED BY tasks_due WHERE timeout_at <= ? ORDER BY id"
# The prefetch of due_promises (see there): the tasks of the due promises, the callbacks on
# them, which of them await anything, and the promises and tasks of their awaiters.
T_BY_IDS = f"SELECT {T_COLS} FROM tasks WHERE id IN (SELECT value FROM json_each(?))"
AWAITERS = (
    "SELECT DISTINCT awaiter FROM callbacks"
    " WHERE awaited IN (SELECT value FROM json_each(?)) AND NOT ready"
)
P_AWAITERS = f"SELECT {P_COLS} FROM promises WHERE id IN ({AWAITERS})"
C_ON_MANY = (
    "SELECT awaited, awaiter, ready FROM callbacks"
    " WHERE awaited IN (SELECT value FROM json_each(?)) ORDER BY awaited, awaiter"
)
C_AWAITING = (
    "SELECT DISTINCT awaiter FROM callbacks WHERE awaiter IN (SELECT value FROM json_each(?))"
)
T_AWAITERS = f"SELECT {T_COLS} FROM tasks WHERE id IN ({AWAITERS})"

# -- callbacks --------------------------------------------------------------------------------
# Insert-or-ignore and then, only for an existing pair asked to be ready, raise it: unlike an
# upsert, the insert's rowcount tells whether a row was added (the count kept below).
C_ADD = "INSERT OR IGNORE INTO callbacks (awaited, awaiter, ready) VALUES (?, ?, ?)"
C_RAISE = "UPDATE callbacks SET ready = 1 WHERE awaited = ? AND awaiter = ?"
C_COUNT = "SELECT count(*) FROM callbacks"
C_ON = "SELECT awaited, awaiter, ready FROM callbacks WHERE awaited = ? ORDER BY awaiter"
C_MARK = "UPDATE callbacks SET ready = 1 WHERE awaited = ? AND NOT ready"
C_COUNT_READY = "SELECT count(*) FROM callbacks WHERE awaiter = ? AND ready"
C_DELETE_READY = "DELETE FROM callbacks WHERE awaiter = ? AND ready"
C_DELETE_OF = "DELETE FROM callbacks WHERE awaiter = ?"
C_DELETE_ONE = "DELETE FROM callbacks WHERE awaited = ? AND awaiter = ?"

# -- listeners --------------------------------------------------------------------------------
L_ADD = "INSERT OR IGNORE INTO listeners (promise_id, address) VALUES (?, ?)"
L_TAKE = "DELETE FROM listeners WHERE promise_id = ? RETURNING address"
L_COUNT = "SELECT count(*) FROM listeners"

# -- outbox -----------------------------------------------------------------------------------
X_PUT = (
    "INSERT INTO outgoing_execute (task_id, version, address) VALUES (?, ?, ?)"
    " ON CONFLICT (task_id) DO UPDATE SET version = excluded.version, address = excluded.address"
)
X_CLAIM = (
    "DELETE FROM outgoing_execute WHERE task_id IN"
    " (SELECT task_id FROM outgoing_execute ORDER BY task_id LIMIT ?)"
    " RETURNING task_id, version, address"
)
U_PUT = "INSERT OR IGNORE INTO outgoing_unblock (promise_id, address) VALUES (?, ?)"
U_CLAIM = (
    "DELETE FROM outgoing_unblock WHERE (promise_id, address) IN"
    " (SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address LIMIT ?)"
    " RETURNING promise_id, address"
)

# -- schedules --------------------------------------------------------------------------------
S_GET = f"SELECT {S_COLS} FROM schedules WHERE id = ?"
S_PUT = (
    f"INSERT INTO schedules ({S_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET cron = excluded.cron, promise_id = excluded.promise_id,"
    " promise_timeout = excluded.promise_timeout,"
    " promise_param_headers = excluded.promise_param_headers,"
    " promise_param_data = excluded.promise_param_data, promise_tags = excluded.promise_tags,"
    " created_at = excluded.created_at, next_run_at = excluded.next_run_at,"
    " last_run_at = excluded.last_run_at"
)
S_DELETE = "DELETE FROM schedules WHERE id = ?"
ST_GET = "SELECT id, record FROM promise_status WHERE id IN (SELECT value FROM json_each(?))"
ST_PUT = (
    "INSERT INTO promise_status (id, record) VALUES (?, ?)"
    " ON CONFLICT (id) DO UPDATE SET record = excluded.record"
)
S_DUE = (
    f"SELECT {S_COLS} FROM schedules INDEXED BY schedules_due WHERE next_run_at <= ? ORDER BY id"
)

# -- search (sql/search.py) -------------------------------------------------------------------
SEARCH = Dialect(param=":{}", tags_match=TAGS_MATCH, tags_json=json_text, count_tags=True)
