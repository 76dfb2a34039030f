-- Sustain SQLite schema, version 3: queues (flow control, docs/queues.md).
--
-- * queues: one row per queue; its definition and counters are one JSON object (data, the
--   store's QueueRow), only wake_at (the rate's next dispatch while tasks wait) is a column,
--   for the timer loop's next_deadline and due_queues.
-- * queue_entries: one row per task on a queue, waiting (running = 0: no execute sent yet)
--   or running (running = 1: it holds a slot).  The two indexes are the two questions
--   dispatch asks: the next waiting entries by priority then FIFO number, and how many run
--   (per key).

CREATE TABLE queues (
    name    TEXT    NOT NULL PRIMARY KEY,
    wake_at INTEGER,
    data    TEXT    NOT NULL
) WITHOUT ROWID;

CREATE INDEX queues_wake ON queues (wake_at) WHERE wake_at IS NOT NULL;

CREATE TABLE queue_entries (
    task_id  TEXT    NOT NULL PRIMARY KEY,
    queue    TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    priority INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    address  TEXT    NOT NULL,
    since    INTEGER NOT NULL,
    running  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX queue_entries_next ON queue_entries (queue, running, priority, seq);
CREATE INDEX queue_entries_key ON queue_entries (queue, running, key);
