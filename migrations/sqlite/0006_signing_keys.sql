-- Ed25519 public keys agents sign requests with (instead of a bearer key),
-- and the signatures already seen, so a captured request cannot be replayed
-- within its 5-minute window.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,          -- sk_<ulid>
    agent_id   TEXT NOT NULL REFERENCES agents(id),
    public_key TEXT NOT NULL UNIQUE,      -- base64 of the 32-byte key
    scopes     TEXT NOT NULL,             -- JSON array, as API keys
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX signing_keys_agent ON signing_keys(agent_id);

CREATE TABLE seen_signatures (
    signature_hash TEXT PRIMARY KEY,      -- SHA-256 of the signature
    expires_at     TEXT NOT NULL
);
CREATE INDEX seen_signatures_expiry ON seen_signatures(expires_at);
