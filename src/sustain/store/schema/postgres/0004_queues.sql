-- Sustain PostgreSQL schema, version 4: queues (flow control, docs/queues.md); the tables of
-- SQLite's 0003_queues.sql, which explains them.  Every dispatch of a queue reads its row
-- FOR UPDATE first, so replicas dispatching from one queue take turns and cannot overshoot
-- its limits.

CREATE TABLE queues (
    name    text COLLATE "C" NOT NULL PRIMARY KEY,
    wake_at bigint,
    data    text NOT NULL
);

CREATE INDEX queues_wake ON queues (wake_at) WHERE wake_at IS NOT NULL;

CREATE TABLE queue_entries (
    task_id  text COLLATE "C" NOT NULL PRIMARY KEY,
    queue    text COLLATE "C" NOT NULL,
    key      text COLLATE "C" NOT NULL,
    priority bigint NOT NULL,
    seq      bigint NOT NULL,
    version  bigint NOT NULL,
    address  text NOT NULL,
    since    bigint NOT NULL,
    running  integer NOT NULL
);

CREATE INDEX queue_entries_next ON queue_entries (queue, running, priority, seq);
CREATE INDEX queue_entries_key ON queue_entries (queue, running, key);
