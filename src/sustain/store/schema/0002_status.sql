-- Sustain SQLite schema, version 2: the status record of a promise (protocol/status.py), a
-- Sustain extension written by the SDK when a step fails or an execution is paused.  The
-- record is JSON text the store does not look into; one row per promise that ever failed,
-- kept when the promise settles (the history of its last failure).
CREATE TABLE promise_status (
    id     TEXT NOT NULL PRIMARY KEY,
    record TEXT NOT NULL
) WITHOUT ROWID;
