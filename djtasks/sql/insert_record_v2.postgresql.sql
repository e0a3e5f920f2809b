-- Insert one READY result row; with queued = true it is also an ORM broker
-- message, and the statement after it wakes the workers of its queue. A row
-- that exists already stays as it is (a worker may have written it first).
-- Both statements go in one round trip and one implicit transaction.
--
-- The last parameter, when not null, sets synchronous_commit for this
-- transaction only: 'off' lets a statement of its own (autocommit) commit
-- without waiting for its WAL flush, for rows a worker writes again from
-- their message if a database crash lost them. Null keeps the setting.
--
-- Parameters: id, backend, task_path, queue_name, priority, args (JSON text),
-- kwargs (JSON text), enqueued_at, run_after, expires_at, available_at, message,
-- queued (boolean), synchronous_commit (text or null), then the queue name for
-- the notification.
INSERT INTO djtasks_taskrecord (
    id, backend, task_path, queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
    available_at, message, status, attempts, worker_ids, errors, lease_owner, deliveries, broker_state
)
SELECT %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s,
       'READY', 0, '[]'::jsonb, '[]'::jsonb, '', 0, CASE WHEN %s THEN 'queued' END
FROM (SELECT set_config('synchronous_commit', COALESCE(%s, current_setting('synchronous_commit')), true))
    AS commit_mode
ON CONFLICT (id) DO NOTHING;
SELECT pg_notify('djtasks', %s)
