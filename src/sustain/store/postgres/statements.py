"""The SQL of ``PostgresTx`` (tx.py): the plain statements of the rare paths (run through a
psycopg cursor) and the prepared statements of the hot path (``PREPARED``, prepared once per
connection by pipeline.py's ``prepare``).  Columns and the whole-store views are shared with
SQLite (sql/statements.py)."""

from __future__ import annotations

from sustain.store.postgres.values import tags_json
from sustain.store.sql.search import Dialect
from sustain.store.sql.statements import P_COLS, S_COLS, T_COLS

# -- promises ---------------------------------------------------------------------------------
P_DUE = (
    f"SELECT {P_COLS} FROM promises"
    " WHERE state = 'pending' AND target IS NOT NULL AND timeout_at <= %s"
    " ORDER BY id FOR UPDATE SKIP LOCKED"
)
P_BY_IDS = f"SELECT {P_COLS} FROM promises WHERE id = ANY(%s)"

# -- tasks ------------------------------------------------------------------------------------
# due_tasks, step 1: claim the promises of the due tasks (promise before task, as the engine
# reads them everywhere else); step 2: the due tasks whose promise was claimed or which have
# none (the contract allows a bare task row).
T_DUE_OWNERS = (
    "SELECT p.id FROM tasks t JOIN promises p ON p.id = t.id"
    " WHERE t.timeout_at <= %s ORDER BY p.id FOR UPDATE OF p SKIP LOCKED"
)
T_DUE = (
    f"SELECT {T_COLS} FROM tasks t WHERE t.timeout_at <= %s"
    " AND (t.id = ANY(%s) OR NOT EXISTS (SELECT 1 FROM promises p WHERE p.id = t.id))"
    " ORDER BY t.id FOR UPDATE OF t SKIP LOCKED"
)

# -- outbox -----------------------------------------------------------------------------------
# SKIP LOCKED: two replicas claiming at once take disjoint entries, neither waits.
X_CLAIM = (
    "DELETE FROM outgoing_execute WHERE task_id IN"
    " (SELECT task_id FROM outgoing_execute ORDER BY task_id LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING task_id, version, address"
)
U_CLAIM = (
    "DELETE FROM outgoing_unblock WHERE (promise_id, address) IN"
    " (SELECT promise_id, address FROM outgoing_unblock ORDER BY promise_id, address"
    " LIMIT %s FOR UPDATE SKIP LOCKED)"
    " RETURNING promise_id, address"
)

# -- schedules --------------------------------------------------------------------------------
S_DUE = f"SELECT {S_COLS} FROM schedules WHERE next_run_at <= %s ORDER BY id FOR UPDATE SKIP LOCKED"

# -- the prepared statements of the hot path (name -> SQL, $n parameters) ----------------------
P_GET = b"sustain_p_get"
P_INSERT = b"sustain_p_insert"
P_UPDATE = b"sustain_p_update"
P_BRANCH = b"sustain_p_branch"
T_GET = b"sustain_t_get"
T_BESIDE = b"sustain_t_beside"
T_PUT = b"sustain_t_put"
C_ADD = b"sustain_c_add"
C_ON = b"sustain_c_on"
C_MARK = b"sustain_c_mark"
C_COUNT_READY = b"sustain_c_count_ready"
C_DELETE_READY = b"sustain_c_delete_ready"
C_DELETE_OF = b"sustain_c_delete_of"
C_DELETE_ONE = b"sustain_c_delete_one"
L_ADD = b"sustain_l_add"
L_TAKE = b"sustain_l_take"
L_DELETE = b"sustain_l_delete"
X_PUT = b"sustain_x_put"
U_PUT = b"sustain_u_put"
S_GET = b"sustain_s_get"
S_PUT = b"sustain_s_put"
S_DELETE = b"sustain_s_delete"

PREPARED: dict[bytes, str] = {
    P_GET: f"SELECT {P_COLS} FROM promises WHERE id = $1 FOR UPDATE",
    P_INSERT: (
        f"INSERT INTO promises ({P_COLS}, target, branch, origin)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
    ),
    P_UPDATE: (
        "UPDATE promises SET state = $1, value_headers = $2, value_data = $3, settled_at = $4"
        " WHERE id = $5"
    ),
    P_BRANCH: f"SELECT {P_COLS} FROM promises WHERE branch = $1 ORDER BY id",
    T_GET: f"SELECT {T_COLS} FROM tasks WHERE id = $1 FOR UPDATE",
    # Sent right after P_GET of the same id (module docstring): the task (kind 0, locked),
    # the callbacks on the promise (kind 1) and its listeners (kind 2).
    T_BESIDE: (
        f"WITH t AS (SELECT {T_COLS} FROM tasks WHERE id = $1 FOR UPDATE)"
        " SELECT 0, state, version, timeout_type, timeout_at, pid, ttl, NULL::boolean,"
        " NULL::text FROM t"
        " UNION ALL SELECT 1, NULL, NULL, NULL, NULL, NULL, NULL, ready, awaiter"
        " FROM callbacks WHERE awaited = $1"
        " UNION ALL SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, address"
        " FROM listeners WHERE promise_id = $1"
    ),
    T_PUT: (
        f"INSERT INTO tasks ({T_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (id) DO UPDATE SET"
        " state = excluded.state, version = excluded.version,"
        " timeout_type = excluded.timeout_type, timeout_at = excluded.timeout_at,"
        " pid = excluded.pid, ttl = excluded.ttl"
    ),
    C_ADD: (
        "INSERT INTO callbacks (awaited, awaiter, ready) VALUES ($1, $2, $3)"
        " ON CONFLICT (awaited, awaiter) DO UPDATE SET ready = callbacks.ready OR excluded.ready"
    ),
    # The callbacks on $1 (kind 0) and its listeners (kind 1) in one trip (module docstring).
    C_ON: (
        "SELECT 0, awaiter, ready FROM callbacks WHERE awaited = $1"
        " UNION ALL SELECT 1, address, NULL FROM listeners WHERE promise_id = $1"
    ),
    C_MARK: "UPDATE callbacks SET ready = true WHERE awaited = $1 AND NOT ready",
    C_COUNT_READY: "SELECT count(*) FROM callbacks WHERE awaiter = $1 AND ready",
    C_DELETE_READY: "DELETE FROM callbacks WHERE awaiter = $1 AND ready",
    C_DELETE_OF: "DELETE FROM callbacks WHERE awaiter = $1",
    C_DELETE_ONE: "DELETE FROM callbacks WHERE awaited = $1 AND awaiter = $2",
    L_ADD: ("INSERT INTO listeners (promise_id, address) VALUES ($1, $2) ON CONFLICT DO NOTHING"),
    L_TAKE: "DELETE FROM listeners WHERE promise_id = $1 RETURNING address",
    L_DELETE: "DELETE FROM listeners WHERE promise_id = $1",
    # The poll_* columns route the entry to the replica holding a matching poll connection
    # (cluster.py); a newer execute of the same task is a new message: queued now
    # and unclaimed, so a replica that claimed the older one cannot delete it (its ack names
    # the old version and its claim).
    X_PUT: (
        "INSERT INTO outgoing_execute (task_id, version, address, poll_cast, poll_group,"
        " poll_id) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (task_id) DO UPDATE SET version = excluded.version,"
        " address = excluded.address, poll_cast = excluded.poll_cast,"
        " poll_group = excluded.poll_group, poll_id = excluded.poll_id, queued_at = now(),"
        " claimed_by = NULL, claimed_at = NULL"
    ),
    U_PUT: (
        "INSERT INTO outgoing_unblock (promise_id, address, poll_cast, poll_group, poll_id)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING"
    ),
    S_GET: f"SELECT {S_COLS} FROM schedules WHERE id = $1 FOR UPDATE",
    S_PUT: (
        f"INSERT INTO schedules ({S_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (id) DO UPDATE SET cron = excluded.cron,"
        " promise_id = excluded.promise_id, promise_timeout = excluded.promise_timeout,"
        " promise_param_headers = excluded.promise_param_headers,"
        " promise_param_data = excluded.promise_param_data,"
        " promise_tags = excluded.promise_tags, created_at = excluded.created_at,"
        " next_run_at = excluded.next_run_at, last_run_at = excluded.last_run_at"
    ),
    S_DELETE: "DELETE FROM schedules WHERE id = $1",
}

# -- status records (protocol/status.py): off the hot path, not prepared ----------------------
ST_GET = "SELECT id, record FROM promise_status WHERE id = ANY(%s)"
ST_PUT = (
    "INSERT INTO promise_status (id, record) VALUES (%s, %s)"
    " ON CONFLICT (id) DO UPDATE SET record = excluded.record"
)

# -- search (sql/search.py) -------------------------------------------------------------------
# ``@>`` on jsonb: every pair of the filter is in the tags, values compared as exact strings.
SEARCH = Dialect(param="%({})s", tags_match="{col}::jsonb @> %(tags)s::jsonb", tags_json=tags_json)
