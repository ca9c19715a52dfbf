-- A signing key's own rate limit, as api_keys.rate_limit (0008).
ALTER TABLE signing_keys ADD COLUMN rate_limit TEXT NOT NULL DEFAULT '{}';
