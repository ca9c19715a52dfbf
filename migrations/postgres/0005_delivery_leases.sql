-- Twin of migrations/sqlite/0005_delivery_leases.sql.
ALTER TABLE webhook_deliveries ADD COLUMN lease_until TEXT COLLATE "C";
