-- Twin of migrations/sqlite/0004_cards.sql.

CREATE TABLE cards (
    token      TEXT COLLATE "C" PRIMARY KEY,
    provider   TEXT NOT NULL,
    agent_id   TEXT COLLATE "C" NOT NULL REFERENCES agents(id),
    created_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX cards_agent ON cards(agent_id);

CREATE INDEX payments_provider_txn ON payments(provider, provider_txn_id) WHERE provider_txn_id IS NOT NULL;
