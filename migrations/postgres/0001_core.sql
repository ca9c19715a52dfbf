-- Twin of migrations/sqlite/0001_core.sql. Each PostgreSQL migration has its
-- SQLite twin's number and name, and the same tables, columns and meanings
-- (read the twin for what each column is), in PostgreSQL's dialect:
-- integers are BIGINT (what the code reads), booleans are 0/1 BIGINT like
-- SQLite's, JSON is TEXT (written and read by the application), and text
-- compares byte-wise (COLLATE "C"): ids and timestamps are fixed-width text
-- whose byte order is time order, whatever the database's locale says.

CREATE TABLE agents (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    policy        TEXT NOT NULL,
    trust_level   TEXT NOT NULL,
    frozen        BIGINT NOT NULL DEFAULT 0,
    frozen_reason TEXT,
    created_at    TEXT COLLATE "C" NOT NULL,
    updated_at    TEXT COLLATE "C" NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT COLLATE "C" PRIMARY KEY,
    agent_id      TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    key_hash      TEXT NOT NULL UNIQUE,
    prefix        TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    allowed_cidrs TEXT NOT NULL,
    expires_at    TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    revoked_at    TEXT COLLATE "C"
);
CREATE INDEX api_keys_agent ON api_keys(agent_id);

CREATE TABLE admin_tokens (
    id         TEXT COLLATE "C" PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT COLLATE "C" NOT NULL,
    revoked_at TEXT COLLATE "C"
);

CREATE TABLE payments (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    agent_id           TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    status             TEXT NOT NULL,
    amount_minor       BIGINT NOT NULL,
    fee_minor          BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    merchant_id        TEXT NOT NULL,
    merchant_category  TEXT,
    rail               TEXT NOT NULL,
    description        TEXT,
    metadata           TEXT NOT NULL,
    decision           TEXT NOT NULL,
    reserved_units     BIGINT NOT NULL,
    reserved_keys      TEXT NOT NULL,
    provider           TEXT,
    provider_reference TEXT,
    provider_txn_id    TEXT,
    failure_code       TEXT,
    failure_message    TEXT,
    idempotency_key    TEXT NOT NULL,
    request_hash       TEXT NOT NULL,
    created_at         TEXT COLLATE "C" NOT NULL,
    updated_at         TEXT COLLATE "C" NOT NULL
);
CREATE UNIQUE INDEX payments_idempotency ON payments(agent_id, idempotency_key);
CREATE INDEX payments_agent ON payments(agent_id, id);
CREATE INDEX payments_status ON payments(status, id);
CREATE INDEX payments_velocity ON payments(agent_id, created_at) WHERE reserved_units > 0;

CREATE TABLE spend_counters (
    agent_id TEXT COLLATE "C" NOT NULL,
    "window" TEXT COLLATE "C" NOT NULL,
    units    BIGINT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (agent_id, "window")
);

-- The twins of SQLite's payments_reserve and payments_release triggers: the
-- counters follow payments.reserved_units, whatever code path changes it.
CREATE FUNCTION payments_reserve() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO spend_counters (agent_id, "window", units, count)
    SELECT NEW.agent_id, k.value, NEW.reserved_units, 1
    FROM jsonb_array_elements_text(NEW.reserved_keys::jsonb) AS k(value)
    ON CONFLICT (agent_id, "window") DO UPDATE
        SET units = spend_counters.units + excluded.units, count = spend_counters.count + excluded.count;
    RETURN NULL;
END $$;
CREATE TRIGGER payments_reserve AFTER INSERT ON payments
    FOR EACH ROW WHEN (NEW.reserved_units > 0) EXECUTE FUNCTION payments_reserve();

CREATE FUNCTION payments_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE spend_counters
        SET units = units - (OLD.reserved_units - NEW.reserved_units),
            count = count - CASE WHEN NEW.reserved_units = 0 THEN 1 ELSE 0 END
        WHERE agent_id = OLD.agent_id
          AND "window" IN (SELECT jsonb_array_elements_text(OLD.reserved_keys::jsonb));
    RETURN NULL;
END $$;
CREATE TRIGGER payments_release AFTER UPDATE OF reserved_units ON payments
    FOR EACH ROW WHEN (NEW.reserved_units < OLD.reserved_units) EXECUTE FUNCTION payments_release();

CREATE TABLE approvals (
    id                 TEXT COLLATE "C" PRIMARY KEY,
    payment_id         TEXT COLLATE "C" NOT NULL UNIQUE REFERENCES payments(id),
    agent_id           TEXT COLLATE "C" NOT NULL,
    status             TEXT NOT NULL,
    approvals_required BIGINT NOT NULL,
    expires_at         TEXT COLLATE "C" NOT NULL,
    created_at         TEXT COLLATE "C" NOT NULL,
    decided_at         TEXT COLLATE "C"
);
CREATE INDEX approvals_status ON approvals(status, expires_at);

CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    id        TEXT COLLATE "C" NOT NULL UNIQUE,
    at        TEXT COLLATE "C" NOT NULL,
    type      TEXT NOT NULL,
    actor     TEXT NOT NULL,
    agent_id  TEXT COLLATE "C",
    subject   TEXT,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_log_type ON audit_log(type, seq);
CREATE INDEX audit_log_agent ON audit_log(agent_id, seq);
