-- Store the outcome of many successful tasks in one statement.
--
-- The rows placeholder is replaced by one group of three parameters per task:
-- id (text), finished_at (timestamptz), return_value (JSON text).
WITH done (id, finished_at, return_value) AS (VALUES {rows})
UPDATE djtasks_taskrecord AS t
SET status = 'SUCCESSFUL',
    finished_at = done.finished_at::timestamptz,
    return_value = done.return_value::jsonb,
    progress = NULL,
    broker_state = NULL,
    leased_until = NULL
FROM done
WHERE t.id = done.id::uuid
