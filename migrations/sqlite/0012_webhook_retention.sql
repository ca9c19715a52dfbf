-- The retention sweep (service/retention.rs) deletes finished deliveries
-- (delivered, or failed for good) oldest first, with their attempts: these
-- find them without reading the whole outbox.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries(updated_at) WHERE status IN ('delivered', 'failed');
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);
