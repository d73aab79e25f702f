-- Up
-- A project's own retention limits (JSON: runs, days, log_bytes; a missing key takes the hub's default).
ALTER TABLE projects ADD COLUMN retention TEXT NOT NULL DEFAULT '{}';

-- Down
ALTER TABLE projects DROP COLUMN retention;
