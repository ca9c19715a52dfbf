-- Authorizations on cards purser issued for one payment (Lithic ASA). Each
-- is answered once (Lithic may send a request twice), and the approved
-- amounts are summed per card, so that a card never authorizes more than its
-- payment in total, whatever the issuer enforces itself.
CREATE TABLE issued_card_authorizations (
    token        TEXT PRIMARY KEY,      -- the authorization's token
    card_token   TEXT NOT NULL,
    payment_id   TEXT NOT NULL REFERENCES payments(id),
    amount_minor INTEGER NOT NULL,
    approved     INTEGER NOT NULL,      -- 1 approved, 0 declined
    created_at   TEXT NOT NULL
);
CREATE INDEX issued_card_authorizations_card ON issued_card_authorizations(card_token);
