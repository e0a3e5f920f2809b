-- Insert one READY result row; with queued = true it is also an ORM broker
-- message, and the statement after it wakes the workers of its queue. A row
-- that exists already stays as it is (a worker may have written it first).
-- Both statements go in one round trip and one implicit transaction.
--
-- Parameters: id, backend, task_path, queue_name, priority, args (JSON text),
-- kwargs (JSON text), enqueued_at, run_after, expires_at, available_at, message,
-- queued (boolean), then the queue name for the notification.
INSERT INTO djtasks_taskrecord (
    id, backend, task_path, queue_name, priority, args, kwargs, enqueued_at, run_after, expires_at,
    available_at, message, status, attempts, worker_ids, errors, lease_owner, deliveries, broker_state
) VALUES (
    %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s, %s,
    'READY', 0, '[]'::jsonb, '[]'::jsonb, '', 0, CASE WHEN %s THEN 'queued' END
)
ON CONFLICT (id) DO NOTHING;
SELECT pg_notify('djtasks', %s)
