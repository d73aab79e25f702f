-- A million runs a day (issue 23): run ids past 2^31 (INTEGER would run out in 6 years at that rate;
-- read as JS numbers, exact to 2^53), and the indexes retention sweeps by instead of reading every run.
-- (Rewrites both tables under an exclusive lock: on a large database, a maintenance window.)
ALTER TABLE runs ALTER COLUMN id TYPE BIGINT;
ALTER TABLE runs ALTER COLUMN id SET MAXVALUE 9007199254740991;
ALTER TABLE webhook_deliveries ALTER COLUMN run_id TYPE BIGINT, ALTER COLUMN id TYPE BIGINT;
ALTER TABLE webhook_deliveries ALTER COLUMN id SET MAXVALUE 9007199254740991;
-- A project's finished runs newest first (the `runs` and `log_bytes` limits), and by when they ended (`days`).
CREATE INDEX runs_finished_by_id ON runs (project_id, id) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX runs_finished_by_time ON runs (project_id, (COALESCE(finished_at, created_at))) WHERE status IN ('completed', 'failed', 'cancelled');
-- Deliveries go with their run, and done ones after the retention window.
CREATE INDEX webhook_deliveries_by_run ON webhook_deliveries (run_id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (updated_at) WHERE status IN ('delivered', 'failed');
