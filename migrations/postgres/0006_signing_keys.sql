-- Twin of migrations/sqlite/0006_signing_keys.sql.
CREATE TABLE signing_keys (
    id         TEXT COLLATE "C" PRIMARY KEY,
    agent_id   TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    public_key TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C"
);
CREATE INDEX signing_keys_agent ON signing_keys(agent_id);

CREATE TABLE seen_signatures (
    signature_hash TEXT PRIMARY KEY,
    expires_at     TEXT COLLATE "C" NOT NULL
);
CREATE INDEX seen_signatures_expiry ON seen_signatures(expires_at);
