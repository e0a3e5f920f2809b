-- Lease up to LIMIT due messages of the ORM broker, highest priority first,
-- then oldest due, and mark their tasks started: on this broker the message
-- is the result row, so reserving and starting is one write per task.
-- SKIP LOCKED lets concurrent workers claim disjoint rows without waiting.
--
-- Parameters (positional): leased_until, worker_id, started_at, started_at, worker_id,
-- now, then one parameter per queue name, then limit.
-- The queue_filter placeholder is empty (every queue) or "AND queue_name IN (...)".
-- Returns: id, queue_name, message, deliveries, priority, available_at.
UPDATE djtasks_taskrecord AS t
SET broker_state = 'leased',
    leased_until = %s,
    lease_owner = %s,
    deliveries = t.deliveries + 1,
    status = 'RUNNING',
    started_at = COALESCE(t.started_at, %s),
    last_attempted_at = %s,
    attempts = t.attempts + 1,
    worker_ids = COALESCE(t.worker_ids, '[]'::jsonb) || jsonb_build_array(%s::text)
FROM (
    SELECT id
    FROM djtasks_taskrecord
    WHERE broker_state = 'queued' AND available_at <= %s {queue_filter}
    ORDER BY priority DESC, available_at, id
    LIMIT %s
    FOR UPDATE SKIP LOCKED
) AS due
WHERE t.id = due.id
RETURNING t.id, t.queue_name, t.message, t.deliveries, t.priority, t.available_at
