-- Twin of migrations/sqlite/0007_kill_switch.sql.
CREATE TABLE kill_switch (
    id         BIGINT PRIMARY KEY CHECK (id = 1),
    reason     TEXT NOT NULL,
    actor      TEXT NOT NULL,
    engaged_at TEXT COLLATE "C" NOT NULL
);
