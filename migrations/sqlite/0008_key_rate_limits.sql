-- Per-key rate limits: JSON {"reads_per_minute": n, "writes_per_minute": n},
-- either left out for the gateway's default (PURSER_RATE_LIMIT_*).
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT NOT NULL DEFAULT '{}';
