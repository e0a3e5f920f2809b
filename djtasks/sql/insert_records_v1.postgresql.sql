-- Insert READY result rows in one statement, whatever their number: each
-- column arrives as one array parameter. When the rows are also the ORM
-- broker's messages (queued = true), wake the workers of their queues;
-- NOTIFY is transactional, so inside a caller's transaction it goes at commit.
--
-- Parameters: twelve arrays of equal length, in the order of the m(...) columns,
-- then queued (boolean) twice.
WITH inserted AS (
    INSERT INTO djtasks_taskrecord (
        id, backend, task_path, queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
        available_at, message, status, attempts, worker_ids, errors, lease_owner, deliveries, broker_state
    )
    SELECT m.id, m.backend, m.task_path, m.queue_name, m.priority, m.args::jsonb, m.kwargs::jsonb,
           m.enqueued_at, m.run_after, m.expires_at, m.available_at, m.message,
           'READY', 0, '[]'::jsonb, '[]'::jsonb, '', 0, CASE WHEN %s THEN 'queued' END
    FROM unnest(
        %s::uuid[], %s::text[], %s::text[], %s::text[], %s::smallint[], %s::text[], %s::text[],
        %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[], %s::text[]
    ) AS m(id, backend, task_path, queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
           available_at, message)
    RETURNING queue_name
)
SELECT pg_notify('djtasks', queues.queue_name)
FROM (SELECT DISTINCT queue_name FROM inserted) AS queues
WHERE %s
