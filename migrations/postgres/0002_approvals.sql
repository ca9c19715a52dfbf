-- Twin of migrations/sqlite/0002_approvals.sql.

CREATE TABLE approvers (
    id         TEXT COLLATE "C" PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C"
);

CREATE TABLE approval_votes (
    approval_id TEXT COLLATE "C" NOT NULL REFERENCES approvals(id),
    approver_id TEXT COLLATE "C" NOT NULL REFERENCES approvers(id),
    decision    TEXT NOT NULL,
    comment     TEXT,
    created_at  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (approval_id, approver_id)
);

CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    approver_id TEXT COLLATE "C" NOT NULL REFERENCES approvers(id),
    csrf_token  TEXT NOT NULL,
    created_at  TEXT COLLATE "C" NOT NULL,
    expires_at  TEXT COLLATE "C" NOT NULL
);

CREATE INDEX approvals_decided ON approvals(decided_at) WHERE decided_at IS NOT NULL;
