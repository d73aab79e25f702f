-- Up
-- One running run per project, enforced by the database itself (not only by the server's lock),
-- so no claim can ever start a second one.
CREATE UNIQUE INDEX one_running_run_per_project ON runs (project_id) WHERE status = 'running';

-- Down
DROP INDEX one_running_run_per_project;
