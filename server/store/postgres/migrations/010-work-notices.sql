-- Workers learn of work by LISTEN hub_work instead of polling (issue 23): 'claim' when a run may
-- have become claimable (a run queued, or one that held its project's queue has ended), and
-- 'cancel:<worker>' when a hub asks that worker to cancel a run. pg_notify folds equal payloads of
-- one transaction into one notice.
CREATE FUNCTION hub_work_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending')
     OR TG_OP = 'UPDATE' AND OLD.status IN ('pending', 'running') AND NEW.status NOT IN ('pending', 'running') THEN
    PERFORM pg_notify('hub_work', 'claim');
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.worker_id IS NOT NULL THEN
    PERFORM pg_notify('hub_work', 'cancel:' || NEW.worker_id);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER runs_work_notice AFTER INSERT OR UPDATE OF status, cancel_requested ON runs
  FOR EACH ROW EXECUTE FUNCTION hub_work_notice();
