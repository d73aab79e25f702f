-- Up
-- The indexes retention sweeps by instead of reading every run (issue 23): a project's finished runs
-- newest first (`runs`, `log_bytes`), by when they ended (`days`); deliveries by run and by age when done.
CREATE INDEX runs_finished_by_id ON runs (project_id, id) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX runs_finished_by_time ON runs (project_id, COALESCE(finished_at, created_at)) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX webhook_deliveries_by_run ON webhook_deliveries (run_id);
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (updated_at) WHERE status IN ('delivered', 'failed');

-- Down
DROP INDEX webhook_deliveries_done;
DROP INDEX webhook_deliveries_by_run;
DROP INDEX runs_finished_by_time;
DROP INDEX runs_finished_by_id;
