-- Twin of migrations/sqlite/0010_forward_claims.sql.
ALTER TABLE payments ADD COLUMN claim TEXT;
ALTER TABLE payments ADD COLUMN claimed_until TEXT COLLATE "C";
CREATE INDEX payments_claimable ON payments(status, updated_at) WHERE status IN ('approved', 'processing');
