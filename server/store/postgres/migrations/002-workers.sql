-- Cluster mode: which worker carries out a run, cancels asked for through any hub, and the workers'
-- heartbeats (a worker not seen for HUB_WORKER_TIMEOUT_MS is lost, and so are its runs).
ALTER TABLE runs ADD COLUMN worker_id TEXT;
ALTER TABLE runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX runs_by_worker ON runs (worker_id) WHERE status = 'running';
CREATE TABLE workers (
  id TEXT PRIMARY KEY,
  started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  last_seen TIMESTAMPTZ NOT NULL DEFAULT now()
);
