-- Sustain SQLite schema, version 1 (the logical schema of PROTOCOL.md §6.1, adapted to the
-- row-level Tx of sustain.store.tx).
--
-- Derived state is not stored twice: a promise's timeout is "pending and has a
-- resonate:target tag" (a partial index), a task's single timeout
-- lives on its row, and a schedule's timeout is its next_run_at.  Ids compare in byte order
-- (BINARY collation, memcmp over UTF-8), which is the code-point order Python sorts by.
-- No foreign keys: the engine keeps the rows consistent, and deferred checks would fail a
-- whole group-committed batch at COMMIT instead of the one operation at fault.

CREATE TABLE promises (
    id            TEXT    NOT NULL PRIMARY KEY,
    state         TEXT    NOT NULL CHECK (state IN (
                      'pending', 'resolved', 'rejected', 'rejected_canceled', 'rejected_timedout')),
    -- headers: JSON object text, NULL when absent; data: opaque text, NULL when absent.
    param_headers TEXT,
    param_data    TEXT,
    value_headers TEXT,
    value_data    TEXT,
    tags          TEXT    NOT NULL DEFAULT '{}',
    timeout_at    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    settled_at    INTEGER,
    -- Copies of tags['resonate:target' | 'resonate:branch' | 'resonate:origin'] (NULL when
    -- absent), written with the tags by the store: cheaper than generated columns, which
    -- would parse the JSON three times per write.  Tags never change after insert.
    target        TEXT,
    branch        TEXT,
    origin        TEXT
);

-- Promise timeouts (derived): due_promises and next_deadline.
CREATE INDEX promises_due ON promises (timeout_at, id)
    WHERE state = 'pending' AND target IS NOT NULL;
-- Preload.
CREATE INDEX promises_branch ON promises (branch, id) WHERE branch IS NOT NULL;
-- Execution trees (search by resonate:origin).
CREATE INDEX promises_origin ON promises (origin, id) WHERE origin IS NOT NULL;

CREATE TABLE tasks (
    id           TEXT    NOT NULL PRIMARY KEY,
    state        TEXT    NOT NULL CHECK (state IN (
                     'pending', 'acquired', 'suspended', 'halted', 'fulfilled')),
    version      INTEGER NOT NULL,
    timeout_type INTEGER CHECK (timeout_type IN (0, 1)),
    timeout_at   INTEGER,
    pid          TEXT,
    ttl          INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX tasks_due ON tasks (timeout_at, id) WHERE timeout_at IS NOT NULL;

CREATE TABLE callbacks (
    awaited TEXT    NOT NULL,
    awaiter TEXT    NOT NULL,
    ready   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (awaited, awaiter)
) WITHOUT ROWID;

CREATE INDEX callbacks_awaiter ON callbacks (awaiter, awaited);
CREATE INDEX callbacks_ready ON callbacks (awaiter) WHERE ready;

CREATE TABLE listeners (
    promise_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    PRIMARY KEY (promise_id, address)
) WITHOUT ROWID;

-- The outbox: one execute per task, one unblock per (promise, address).
CREATE TABLE outgoing_execute (
    task_id TEXT    NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,
    address TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE outgoing_unblock (
    promise_id TEXT NOT NULL,
    address    TEXT NOT NULL,
    PRIMARY KEY (promise_id, address)
) WITHOUT ROWID;

CREATE TABLE schedules (
    id                    TEXT    NOT NULL PRIMARY KEY,
    cron                  TEXT    NOT NULL,
    promise_id            TEXT    NOT NULL,
    promise_timeout       INTEGER NOT NULL,
    promise_param_headers TEXT,
    promise_param_data    TEXT,
    promise_tags          TEXT    NOT NULL DEFAULT '{}',
    created_at            INTEGER NOT NULL,
    next_run_at           INTEGER NOT NULL,
    last_run_at           INTEGER
) WITHOUT ROWID;

CREATE INDEX schedules_due ON schedules (next_run_at, id);
