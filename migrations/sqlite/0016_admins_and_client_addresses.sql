-- Admins are people: each has a name, a role (`admin` or `auditor`) and its
-- own token; the dev-mode token rows become the admin named `dev`.
ALTER TABLE admin_tokens RENAME TO admins;
ALTER TABLE admins ADD COLUMN name TEXT NOT NULL DEFAULT 'dev';
ALTER TABLE admins ADD COLUMN role TEXT NOT NULL DEFAULT 'admin';
-- JSON array of CIDRs the token may be used from; empty: anywhere.
ALTER TABLE admins ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvers ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '[]';

-- The network address each audited action came from (NULL for the
-- gateway's own work and for records written before this migration).
ALTER TABLE audit_log ADD COLUMN client TEXT;
