-- Twin of migrations/sqlite/0011_issued_card_authorizations.sql.
CREATE TABLE issued_card_authorizations (
    token        TEXT COLLATE "C" PRIMARY KEY,
    card_token   TEXT COLLATE "C" NOT NULL,
    payment_id   TEXT COLLATE "C" NOT NULL REFERENCES payments(id),
    amount_minor BIGINT NOT NULL,
    approved     BIGINT NOT NULL,
    created_at   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX issued_card_authorizations_card ON issued_card_authorizations(card_token);
