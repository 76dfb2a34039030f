-- Sustain PostgreSQL schema, version 2: what N `sustain serve` replicas on one database need
-- (sustain/store/postgres/cluster.py explains the design).
--
-- * replicas: one row per live replica, its heartbeat refreshed every few seconds.  A replica
--   whose heartbeat is older than the replica timeout is dead: its poll connections stop
--   counting and what it claimed from the outbox may be claimed again.
-- * poll_connections: the (group, id) pairs of the SSE poll streams each replica holds.
-- * The outbox tables gain the routing key of poll addresses (cast, group and id, decoded
--   as the poll registry compares them; NULL for other schemes), the time the entry was
--   queued and who claimed it when.  A claim marks an entry; the entry is deleted once the
--   replica has sent it.  Timestamps are the database's clock (now()), so replicas on
--   machines with skewed clocks agree on them.

CREATE TABLE replicas (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE poll_connections (
    replica    text COLLATE "C" NOT NULL,
    poll_group text COLLATE "C" NOT NULL,
    poll_id    text COLLATE "C" NOT NULL,
    PRIMARY KEY (replica, poll_group, poll_id)
);

CREATE INDEX poll_connections_member ON poll_connections (poll_group, poll_id);

ALTER TABLE outgoing_execute
    ADD COLUMN poll_cast  text,
    ADD COLUMN poll_group text COLLATE "C",
    ADD COLUMN poll_id    text COLLATE "C",
    ADD COLUMN queued_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_by text COLLATE "C",
    ADD COLUMN claimed_at timestamptz;

ALTER TABLE outgoing_unblock
    ADD COLUMN poll_cast  text,
    ADD COLUMN poll_group text COLLATE "C",
    ADD COLUMN poll_id    text COLLATE "C",
    ADD COLUMN queued_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN claimed_by text COLLATE "C",
    ADD COLUMN claimed_at timestamptz;
