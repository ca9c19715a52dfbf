-- Outbound webhooks: endpoints, the durable outbox, deliveries and attempts.

CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT,
    events          TEXT NOT NULL,          -- JSON array of event types, or ["*"]
    -- Signing secrets, sealed with the configured encryption key (never
    -- stored in the clear: they must be reused to sign, so they cannot be
    -- hashed like API keys).
    secret          TEXT NOT NULL,
    previous_secret TEXT,                   -- still signs until previous_until
    previous_until  TEXT,
    disabled        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- The outbox. An event is written in the same transaction as the change it
-- describes; `body` is the exact JSON every delivery of it sends.
-- Its rowid grows in commit order (one writer), which the fan-out cursor
-- below relies on.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,            -- msg_<ulid>: the webhook-id header
    type       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

-- How far deliveries have been created: events with a larger rowid are new.
-- A cursor, not a flag per event, so fanning out never rewrites events.
CREATE TABLE webhook_fanout (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    last_rowid INTEGER NOT NULL
);
INSERT INTO webhook_fanout (id, last_rowid) VALUES (1, 0);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES webhook_events(id),
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints(id),
    status          TEXT NOT NULL,          -- pending | delivered | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_event ON webhook_deliveries(event_id);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries(endpoint_id, created_at);

CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id),
    event_id    TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    at          TEXT NOT NULL,
    status_code INTEGER,                    -- NULL when no response (timeout, refused)
    latency_ms  INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_attempts_event ON webhook_attempts(event_id, at);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts(endpoint_id, at);
