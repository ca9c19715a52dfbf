-- When a key last authenticated a request (written at most once a minute
-- per key, so a busy key costs no write per request).
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
