-- Claim notices name their run (issue 23): every idle worker claimed at once on each 'claim', so one
-- queued run cost a claim statement per idle worker. Now 'claim:<run>' names the run that can be
-- claimed (the queued one; on an end, the project's next pending run) and 'claimed:<run>' says a run
-- went from pending to running: workers wait a random moment before claiming and let a run go that
-- another worker claimed meanwhile. 'cancel:<worker>' and when each notice is sent stay as in 010.
-- (Runs queued in one transaction now send one notice each, not one in all: their ids differ.)
CREATE OR REPLACE FUNCTION hub_work_notice() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  next_id BIGINT;
BEGIN
  IF NEW.status = 'pending' AND (TG_OP = 'INSERT' OR OLD.status <> 'pending') THEN
    PERFORM pg_notify('hub_work', 'claim:' || NEW.id);
  ELSIF TG_OP = 'UPDATE' AND OLD.status IN ('pending', 'running') AND NEW.status NOT IN ('pending', 'running') THEN
    SELECT min(q.id) INTO next_id FROM runs q WHERE q.project_id = NEW.project_id AND q.status = 'pending';
    IF next_id IS NOT NULL THEN
      PERFORM pg_notify('hub_work', 'claim:' || next_id);
    END IF;
  END IF;
  IF TG_OP = 'UPDATE' AND OLD.status = 'pending' AND NEW.status = 'running' THEN
    PERFORM pg_notify('hub_work', 'claimed:' || NEW.id);
  END IF;
  IF TG_OP = 'UPDATE' AND NEW.cancel_requested AND NOT OLD.cancel_requested AND NEW.worker_id IS NOT NULL THEN
    PERFORM pg_notify('hub_work', 'cancel:' || NEW.worker_id);
  END IF;
  RETURN NULL;
END $$;
