-- Store the outcome of many successful tasks in one statement.
--
-- The rows placeholder is replaced by one group of three parameters per task:
-- id (32 hex digits, as Django stores UUIDs in SQLite), finished_at, return_value (JSON text).
WITH done (id, finished_at, return_value) AS (VALUES {rows})
UPDATE djtasks_taskrecord
SET status = 'SUCCESSFUL',
    finished_at = done.finished_at,
    return_value = done.return_value,
    progress = NULL,
    broker_state = NULL,
    leased_until = NULL
FROM done
WHERE djtasks_taskrecord.id = done.id
