-- Twin of migrations/sqlite/0008_key_rate_limits.sql.
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT NOT NULL DEFAULT '{}';
