-- Sustain PostgreSQL schema, version 1: the same tables, columns and meaning as the SQLite
-- schema (../0001_init.sql), in PostgreSQL types.
--
-- Ids and addresses are COLLATE "C": they compare and sort by bytes (UTF-8), which is the
-- code-point order Python and SQLite use, whatever the database's default collation is, so
-- every store lists rows in the same order.  Derived state is not stored twice: a promise's
-- timeout is "pending and has a resonate:target tag" (a partial index), a task's single
-- timeout lives on its row, a schedule's timeout is its next_run_at.
-- No foreign keys: the engine keeps the rows consistent, and each operation locks what it
-- writes (sustain/store/postgres/tx.py); a foreign key would only add key-share locks.

CREATE TABLE promises (
    id            text COLLATE "C" NOT NULL PRIMARY KEY,
    state         text   NOT NULL CHECK (state IN (
                      'pending', 'resolved', 'rejected', 'rejected_canceled', 'rejected_timedout')),
    -- headers: JSON object text, NULL when absent; data: opaque text, NULL when absent.
    param_headers text,
    param_data    text,
    value_headers text,
    value_data    text,
    -- JSON object text exactly as written (msgspec); searched through a jsonb cast.
    tags          text   NOT NULL DEFAULT '{}',
    timeout_at    bigint NOT NULL,
    created_at    bigint NOT NULL,
    settled_at    bigint,
    -- Copies of tags['resonate:target' | 'resonate:branch' | 'resonate:origin'] (NULL when
    -- absent), written with the tags.  Tags never change after insert.
    target        text COLLATE "C",
    branch        text COLLATE "C",
    origin        text COLLATE "C"
);

-- Promise timeouts (derived): due_promises and next_deadline.
CREATE INDEX promises_due ON promises (timeout_at, id)
    WHERE state = 'pending' AND target IS NOT NULL;
-- Preload.
CREATE INDEX promises_branch ON promises (branch, id) WHERE branch IS NOT NULL;
-- Execution trees (search by resonate:origin).
CREATE INDEX promises_origin ON promises (origin, id) WHERE origin IS NOT NULL;

CREATE TABLE tasks (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    state        text     NOT NULL CHECK (state IN (
                     'pending', 'acquired', 'suspended', 'halted', 'fulfilled')),
    version      bigint   NOT NULL,
    timeout_type smallint CHECK (timeout_type IN (0, 1)),
    timeout_at   bigint,
    pid          text,
    ttl          bigint   NOT NULL
);

CREATE INDEX tasks_due ON tasks (timeout_at, id) WHERE timeout_at IS NOT NULL;

CREATE TABLE callbacks (
    awaited text COLLATE "C" NOT NULL,
    awaiter text COLLATE "C" NOT NULL,
    ready   boolean NOT NULL DEFAULT false,
    PRIMARY KEY (awaited, awaiter)
);

CREATE INDEX callbacks_awaiter ON callbacks (awaiter, awaited);
CREATE INDEX callbacks_ready ON callbacks (awaiter) WHERE ready;

CREATE TABLE listeners (
    promise_id text COLLATE "C" NOT NULL,
    address    text COLLATE "C" NOT NULL,
    PRIMARY KEY (promise_id, address)
);

-- The outbox: one execute per task, one unblock per (promise, address).  Replicas claim
-- entries with FOR UPDATE SKIP LOCKED, so two never take the same one.
CREATE TABLE outgoing_execute (
    task_id text COLLATE "C" NOT NULL PRIMARY KEY,
    version bigint NOT NULL,
    address text   NOT NULL
);

CREATE TABLE outgoing_unblock (
    promise_id text COLLATE "C" NOT NULL,
    address    text COLLATE "C" NOT NULL,
    PRIMARY KEY (promise_id, address)
);

CREATE TABLE schedules (
    id                    text COLLATE "C" NOT NULL PRIMARY KEY,
    cron                  text   NOT NULL,
    promise_id            text   NOT NULL,
    promise_timeout       bigint NOT NULL,
    promise_param_headers text,
    promise_param_data    text,
    promise_tags          text   NOT NULL DEFAULT '{}',
    created_at            bigint NOT NULL,
    next_run_at           bigint NOT NULL,
    last_run_at           bigint
);

CREATE INDEX schedules_due ON schedules (next_run_at, id);
