-- Insert READY result rows in one statement, whatever their number: the rows
-- arrive as one JSON array parameter, one array of twelve values per row,
-- which PostgreSQL parses faster than the client can build per-column arrays.
-- When the rows are also the ORM broker's messages (queued = true), wake the
-- workers of their queues; NOTIFY is transactional, so inside a caller's
-- transaction it goes at commit. Rows that exist already stay as they are (a
-- worker may have written them first). The synchronous_commit parameter is
-- as in insert_record_v2.postgresql.sql.
--
-- Parameters: queued (boolean), synchronous_commit (text or null), the rows (JSON: [id, backend, task_path,
-- queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
-- available_at, message] each, args and kwargs as JSON values, moments as
-- ISO 8601 text or null), then queued again.
WITH inserted AS (
    INSERT INTO djtasks_taskrecord (
        id, backend, task_path, queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
        available_at, message, status, attempts, worker_ids, errors, lease_owner, deliveries, broker_state
    )
    SELECT (m->>0)::uuid, m->>1, m->>2, m->>3, (m->>4)::smallint, m->5, m->6,
           (m->>7)::timestamptz, (m->>8)::timestamptz, (m->>9)::timestamptz, (m->>10)::timestamptz, m->>11,
           'READY', 0, '[]'::jsonb, '[]'::jsonb, '', 0, CASE WHEN %s THEN 'queued' END
    FROM (SELECT set_config('synchronous_commit', COALESCE(%s, current_setting('synchronous_commit')), true))
        AS commit_mode,
        jsonb_array_elements(%s::jsonb) AS rows(m)
    ON CONFLICT (id) DO NOTHING
    RETURNING queue_name
)
SELECT pg_notify('djtasks', queues.queue_name)
FROM (SELECT DISTINCT queue_name FROM inserted) AS queues
WHERE %s
