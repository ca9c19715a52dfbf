-- Twin of migrations/sqlite/0003_webhooks.sql.

CREATE TABLE webhook_endpoints (
    id              TEXT COLLATE "C" PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT,
    events          TEXT NOT NULL,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TEXT COLLATE "C",
    disabled        BIGINT NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

-- `seq` plays SQLite's rowid: it grows in commit order because every write
-- transaction holds the writers' advisory lock (see src/store/writer.rs).
CREATE TABLE webhook_events (
    seq        BIGSERIAL UNIQUE,
    id         TEXT COLLATE "C" PRIMARY KEY,
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE webhook_fanout (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    last_rowid BIGINT NOT NULL
);
INSERT INTO webhook_fanout (id, last_rowid) VALUES (1, 0);

CREATE TABLE webhook_deliveries (
    id              TEXT COLLATE "C" PRIMARY KEY,
    event_id        TEXT COLLATE "C" NOT NULL REFERENCES webhook_events(id),
    endpoint_id     TEXT COLLATE "C" NOT NULL REFERENCES webhook_endpoints(id),
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT COLLATE "C",
    last_error      TEXT,
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id          TEXT COLLATE "C" PRIMARY KEY,
    delivery_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_deliveries(id),
    event_id    TEXT COLLATE "C" NOT NULL,
    endpoint_id TEXT COLLATE "C" NOT NULL,
    at          TEXT COLLATE "C" NOT NULL,
    status_code BIGINT,
    latency_ms  BIGINT NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id, at);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts(endpoint_id, at);
