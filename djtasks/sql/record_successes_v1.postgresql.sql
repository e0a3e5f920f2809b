-- Store the outcome of many successful tasks in one statement.
--
-- The rows placeholder is replaced by one group of four parameters per task:
-- id (text), finished_at (timestamptz), return_value (JSON text), and
-- started_at: the start of this attempt when its start mark was not written
-- (the task ended before the worker wrote it), else null. Such a row gets its
-- start mark in this same UPDATE, one row version instead of two. The last
-- parameter is the worker id (JSON text), appended to those rows' worker_ids.
-- Returns the ids of the rows it updated.
WITH done (id, finished_at, return_value, started_at) AS (VALUES {rows})
UPDATE djtasks_taskrecord AS t
SET status = 'SUCCESSFUL',
    finished_at = done.finished_at::timestamptz,
    return_value = done.return_value::jsonb,
    progress = NULL,
    broker_state = NULL,
    leased_until = NULL,
    started_at = COALESCE(t.started_at, done.started_at::timestamptz),
    last_attempted_at = COALESCE(done.started_at::timestamptz, t.last_attempted_at),
    attempts = t.attempts + CASE WHEN done.started_at IS NULL THEN 0 ELSE 1 END,
    worker_ids = CASE WHEN done.started_at IS NULL THEN t.worker_ids
                      ELSE COALESCE(t.worker_ids, '[]'::jsonb) || jsonb_build_array(%s::jsonb) END
FROM done
WHERE t.id = done.id::uuid
RETURNING t.id
