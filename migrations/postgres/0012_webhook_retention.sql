-- Twin of migrations/sqlite/0012_webhook_retention.sql.
CREATE INDEX webhook_deliveries_finished ON webhook_deliveries(updated_at) WHERE status IN ('delivered', 'failed');
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);
