-- A worker's lease on the run it carries out (issue 22): the epoch grows with each claim of the run
-- (and when a hub gives it up), and the lease ends at lease_expires_at by the database's clock. Every
-- write by the worker names its epoch and is refused once the lease is not its own, or expired.
ALTER TABLE runs ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN lease_expires_at TIMESTAMPTZ;
