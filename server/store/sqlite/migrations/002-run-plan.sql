-- Up
-- The steps a run carries out (JSON), resolved when it is created: a run queued before the
-- pipelines file changed still runs what it was created for. NULL for runs made before this.
ALTER TABLE runs ADD COLUMN plan TEXT;

-- Down
ALTER TABLE runs DROP COLUMN plan;
