-- Hubs re-read the runs that started or ended lately every few seconds (server/store/postgres/runFeed.ts,
-- behind the notifications): by these indexes, not by a scan of every run ever kept.
-- (007: 006 is taken by the fenced leases, made beside this.)
CREATE INDEX runs_by_started ON runs (started_at);
CREATE INDEX runs_by_finished ON runs (finished_at);
