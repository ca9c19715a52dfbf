-- Audit records of payment decisions that PostgreSQL replicas commit
-- concurrently, waiting to be placed in the hash chain. Each is committed
-- with its decision (never lost); a writer holding the database's write
-- lock moves them into audit_log in id order, within moments (see
-- docs/audit.md). SQLite appends to the chain directly and leaves this
-- table empty.
CREATE TABLE audit_pending (
    id       TEXT PRIMARY KEY,
    at       TEXT NOT NULL,
    type     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    client   TEXT,
    agent_id TEXT,
    subject  TEXT,
    data     TEXT NOT NULL
);
