-- Store the outcome of many successful tasks in one statement.
--
-- The rows placeholder is replaced by one group of four parameters per task:
-- id (32 hex digits, as Django stores UUIDs in SQLite), finished_at,
-- return_value (JSON text), and started_at: the start of this attempt when its
-- start mark was not written (the task ended before the worker wrote it), else
-- null. Such a row gets its start mark in this same UPDATE. The last parameter
-- is the worker id (JSON text), appended to those rows' worker_ids. Returns
-- the ids of the rows it updated.
WITH done (id, finished_at, return_value, started_at) AS (VALUES {rows})
UPDATE djtasks_taskrecord
SET status = 'SUCCESSFUL',
    finished_at = done.finished_at,
    return_value = done.return_value,
    progress = NULL,
    broker_state = NULL,
    leased_until = NULL,
    started_at = COALESCE(djtasks_taskrecord.started_at, done.started_at),
    last_attempted_at = COALESCE(done.started_at, djtasks_taskrecord.last_attempted_at),
    attempts = djtasks_taskrecord.attempts + (done.started_at IS NOT NULL),
    worker_ids = CASE WHEN done.started_at IS NULL THEN djtasks_taskrecord.worker_ids
                      ELSE json_insert(COALESCE(djtasks_taskrecord.worker_ids, '[]'), '$[#]', json(%s)) END
FROM done
WHERE djtasks_taskrecord.id = done.id
RETURNING djtasks_taskrecord.id
