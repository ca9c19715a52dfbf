-- A delivery being sent is leased to the dispatcher sending it until
-- lease_until, so another dispatcher (a replica on PostgreSQL) does not
-- send the same attempt; a lease left by a crashed sender expires.
ALTER TABLE webhook_deliveries ADD COLUMN lease_until TEXT;
