-- Mark a fetched batch of tasks started by one worker, in one statement.
--
-- Parameters: started_at (kept if the row has one from an earlier attempt),
-- last_attempted_at, the worker id (JSON text), the task ids (uuid[]).
UPDATE djtasks_taskrecord
SET status = 'RUNNING',
    started_at = COALESCE(started_at, %s),
    last_attempted_at = %s,
    attempts = attempts + 1,
    worker_ids = COALESCE(worker_ids, '[]'::jsonb) || jsonb_build_array(%s::jsonb)
WHERE id = ANY(%s::uuid[])
