-- Cards whose real-time authorizations (Lithic ASA) purser decides.
-- A standing card belongs to an agent: each authorization is a payment
-- decided by the agent's policy. Cards purser issued itself for one approved
-- payment are found through that payment (provider, provider_txn_id).
CREATE TABLE cards (
    token       TEXT PRIMARY KEY,          -- the provider's card token
    provider    TEXT NOT NULL,
    agent_id    TEXT NOT NULL REFERENCES agents(id),
    created_at  TEXT NOT NULL
);
CREATE INDEX cards_agent ON cards(agent_id);

CREATE INDEX payments_provider_txn ON payments(provider, provider_txn_id) WHERE provider_txn_id IS NOT NULL;
