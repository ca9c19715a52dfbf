-- A payment is claimed by one gateway's forwarder before any provider call
-- (forward or status), until `claimed_until`: no channel, sweep or replica
-- can send it while the claim holds, and only the claimant records its
-- outcome (providers/forwarder.rs).
ALTER TABLE payments ADD COLUMN claim TEXT;
ALTER TABLE payments ADD COLUMN claimed_until TEXT;
CREATE INDEX payments_claimable ON payments(status, updated_at) WHERE status IN ('approved', 'processing');
