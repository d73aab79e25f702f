-- Workers learn of work by LISTEN hub_work instead of polling (issue 23): 'claim' when a run is
-- queued, or when a run that held its project's queue ends while another of the project waits
-- (not on every end: each notice wakes every idle worker), and 'cancel:<worker>' when a hub asks
-- that worker to cancel a run. pg_notify folds equal payloads of one transaction into one notice.
-- (An end racing a queueing may miss its notice: the workers' backstop poll finds that run.)
CREATE INDEX runs_active_by_project ON runs (project_id, id) WHERE status IN ('pending', 'running');
-- (its search_path is the migration's: a session with another one, an administrator's, still finds `runs`)
CREATE FUNCTION hub_work_notice() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending')
     OR TG_OP = 'UPDATE' AND OLD.status IN ('pending', 'running') AND NEW.status NOT IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM runs q WHERE q.project_id = NEW.project_id AND q.status = 'pending') THEN
    PERFORM pg_notify('hub_work', 'claim');
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.worker_id IS NOT NULL THEN
    PERFORM pg_notify('hub_work', 'cancel:' || NEW.worker_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_work_notice AFTER INSERT OR UPDATE OF status, cancel_requested ON runs
  FOR EACH ROW EXECUTE FUNCTION hub_work_notice();
