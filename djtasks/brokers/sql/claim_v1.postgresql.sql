-- Lease up to LIMIT due messages of the ORM broker, highest priority first,
-- then oldest due. SKIP LOCKED lets concurrent workers claim disjoint rows
-- without waiting on each other.
--
-- Parameters (positional): leased_until, worker_id, now, [queue names...], limit.
-- The queue_filter placeholder is empty (every queue) or "AND queue_name IN (...)", one parameter a queue.
-- Returns: id, queue_name, message, deliveries, priority, available_at.
UPDATE djtasks_taskrecord AS t
SET broker_state = 'leased',
    leased_until = %s,
    lease_owner = %s,
    deliveries = t.deliveries + 1
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
