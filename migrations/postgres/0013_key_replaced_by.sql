-- A rotated key names the key that replaced it: it is in its grace period
-- and cannot be rotated again (its successor can).
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
