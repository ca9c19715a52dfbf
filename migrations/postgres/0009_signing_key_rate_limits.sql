-- Twin of migrations/sqlite/0009_signing_key_rate_limits.sql.
ALTER TABLE signing_keys ADD COLUMN rate_limit TEXT NOT NULL DEFAULT '{}';
