-- Core schema: agents, credentials, payments, reservations, approvals, audit.
-- Timestamps are RFC 3339 UTC text with millisecond precision and a fixed
-- width, so text order is time order. Money is integer units, never REAL.

CREATE TABLE agents (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    trust_level   TEXT NOT NULL,
    frozen        INTEGER NOT NULL DEFAULT 0,
    frozen_reason TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    agent_id      TEXT NOT NULL REFERENCES agents(id),
    -- SHA-256 (hex) of the whole key; the key itself is never stored.
    key_hash      TEXT NOT NULL UNIQUE,
    -- The first characters of the key, so operators can tell keys apart.
    prefix        TEXT NOT NULL,
    scopes        TEXT NOT NULL,      -- JSON array of scope strings
    allowed_cidrs TEXT NOT NULL,      -- JSON array of CIDR strings
    expires_at    TEXT,
    created_at    TEXT NOT NULL,
    revoked_at    TEXT
);
CREATE INDEX api_keys_agent ON api_keys(agent_id);

-- Admin tokens minted by `serve --dev` (configured tokens live in config).
CREATE TABLE admin_tokens (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);

CREATE TABLE payments (
    id                TEXT PRIMARY KEY,   -- pay_<ulid>: sorts by creation time
    agent_id          TEXT NOT NULL REFERENCES agents(id),
    status            TEXT NOT NULL,
    amount_minor      INTEGER NOT NULL,   -- in `currency`'s minor units
    fee_minor         INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    merchant_id       TEXT NOT NULL,
    merchant_category TEXT,
    rail              TEXT NOT NULL,
    description       TEXT,
    metadata          TEXT NOT NULL,      -- JSON object
    decision          TEXT NOT NULL,      -- JSON decision as returned to the agent
    -- Counter units (millionths of the policy's base currency) this payment
    -- holds in spend_counters; 0 once released or if never reserved.
    reserved_units    INTEGER NOT NULL,
    -- Counter keys the reservation was booked under, so a release debits
    -- exactly what the reservation credited even if the policy changed since.
    reserved_keys     TEXT NOT NULL,      -- JSON array
    provider          TEXT,               -- provider name once approved
    provider_reference TEXT,              -- purser's forward/idempotency reference
    provider_txn_id   TEXT,               -- the provider's own id, once known
    failure_code      TEXT,
    failure_message   TEXT,
    -- The client's Idempotency-Key and the SHA-256 of its canonical request:
    -- a replay with the same key must carry the same request.
    idempotency_key   TEXT NOT NULL,
    request_hash      TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE UNIQUE INDEX payments_idempotency ON payments(agent_id, idempotency_key);
CREATE INDEX payments_agent ON payments(agent_id, id);
CREATE INDEX payments_status ON payments(status, id);
-- Velocity windows count live reservations per agent in a trailing period.
CREATE INDEX payments_velocity ON payments(agent_id, created_at) WHERE reserved_units > 0;

-- Running reserved totals per agent and window ("day:2026-11-26",
-- "week:2026-W48", "month:2026-11", "lifetime", "merchant:<id>",
-- "category:<name>"): checking a limit is a primary-key lookup, not a scan.
CREATE TABLE spend_counters (
    agent_id TEXT NOT NULL,
    window   TEXT NOT NULL,
    units    INTEGER NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (agent_id, window)
) WITHOUT ROWID;

-- The counters are derived from payments.reserved_units by these triggers,
-- so no code path can change a reservation without its counters following:
-- inserting a reserving payment books it under its reserved_keys, and
-- lowering reserved_units (a release) takes the difference back out.
CREATE TRIGGER payments_reserve AFTER INSERT ON payments WHEN NEW.reserved_units > 0
BEGIN
    INSERT INTO spend_counters (agent_id, window, units, count)
    SELECT NEW.agent_id, k.value, NEW.reserved_units, 1 FROM json_each(NEW.reserved_keys) AS k WHERE true
    ON CONFLICT (agent_id, window) DO UPDATE
        SET units = units + excluded.units, count = count + excluded.count;
END;

CREATE TRIGGER payments_release AFTER UPDATE OF reserved_units ON payments
    WHEN NEW.reserved_units < OLD.reserved_units
BEGIN
    UPDATE spend_counters
        SET units = units - (OLD.reserved_units - NEW.reserved_units),
            count = count - (NEW.reserved_units = 0)
        WHERE agent_id = OLD.agent_id AND window IN (SELECT value FROM json_each(OLD.reserved_keys));
END;

CREATE TABLE approvals (
    id                 TEXT PRIMARY KEY,
    payment_id         TEXT NOT NULL UNIQUE REFERENCES payments(id),
    agent_id           TEXT NOT NULL,
    status             TEXT NOT NULL,     -- pending | approved | rejected | expired
    approvals_required INTEGER NOT NULL,
    expires_at         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    decided_at         TEXT
);
CREATE INDEX approvals_status ON approvals(status, expires_at);

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical record).
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    id        TEXT NOT NULL UNIQUE,
    at        TEXT NOT NULL,
    type      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    agent_id  TEXT,
    subject   TEXT,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_type ON audit_log(type, seq);
CREATE INDEX audit_log_agent ON audit_log(agent_id, seq);
