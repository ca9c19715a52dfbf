-- Human approvals: approvers, their votes, and console sessions.

CREATE TABLE approvers (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    -- SHA-256 (hex) of the approver token; the token itself is never stored.
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

-- One row per approver and approval: an approver counts once.
CREATE TABLE approval_votes (
    approval_id TEXT NOT NULL REFERENCES approvals(id),
    approver_id TEXT NOT NULL REFERENCES approvers(id),
    decision    TEXT NOT NULL,    -- approve | deny
    comment     TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (approval_id, approver_id)
) WITHOUT ROWID;

-- Console sign-ins. The cookie carries a random session id; only its hash
-- is stored, with the CSRF token that every console form must echo.
CREATE TABLE console_sessions (
    id_hash     TEXT PRIMARY KEY,
    approver_id TEXT NOT NULL REFERENCES approvers(id),
    csrf_token  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE INDEX approvals_decided ON approvals(decided_at) WHERE decided_at IS NOT NULL;
