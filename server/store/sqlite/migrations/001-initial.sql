-- Up
CREATE TABLE projects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  doc_root TEXT NOT NULL,
  pipeline TEXT NOT NULL,
  settings TEXT NOT NULL DEFAULT '{}',
  created_at TEXT NOT NULL
);

-- AUTOINCREMENT: a purged run's id (and so its log path) is never given to another run.
CREATE TABLE runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  scope TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  triggered_by TEXT NOT NULL,
  created_at TEXT NOT NULL,
  started_at TEXT,
  finished_at TEXT,
  exit_code INTEGER,
  signal TEXT,
  error_message TEXT,
  current_step TEXT,
  progress_current INTEGER NOT NULL DEFAULT 0,
  progress_total INTEGER NOT NULL DEFAULT 0,
  log_size INTEGER NOT NULL DEFAULT 0,
  runner_pid INTEGER,
  runner_token TEXT
);

CREATE INDEX runs_by_project ON runs (project_id, id DESC);
CREATE INDEX runs_active ON runs (status) WHERE status IN ('pending', 'running');

-- Down
DROP INDEX runs_active;
DROP INDEX runs_by_project;
DROP TABLE runs;
DROP TABLE projects;
