-- The gateway-wide kill switch: while a row is here, no payment is approved,
-- approved or forwarded (see README, "Incident response").
CREATE TABLE kill_switch (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    engaged_at TEXT NOT NULL
);
