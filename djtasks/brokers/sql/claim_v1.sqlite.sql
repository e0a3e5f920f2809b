-- Lease up to LIMIT due messages of the ORM broker, highest priority first,
-- then oldest due, and mark their tasks started: on this broker the message
-- is the result row, so reserving and starting is one write per task.
-- One statement: SQLite takes the write lock before it reads, so two
-- processes never claim the same row, and a busy database waits (busy
-- timeout) instead of failing.
--
-- Parameters (positional): leased_until, worker_id, started_at, started_at, worker_id,
-- now, then one parameter per queue name, then limit.
-- The queue_filter placeholder is empty (every queue) or "AND queue_name IN (...)".
-- Returns: id, queue_name, message, deliveries, priority, available_at.
UPDATE djtasks_taskrecord
SET broker_state = 'leased',
    leased_until = %s,
    lease_owner = %s,
    deliveries = deliveries + 1,
    status = 'RUNNING',
    started_at = COALESCE(started_at, %s),
    last_attempted_at = %s,
    attempts = attempts + 1,
    worker_ids = json_insert(COALESCE(worker_ids, '[]'), '$[#]', %s)
WHERE id IN (
    SELECT id
    FROM djtasks_taskrecord
    WHERE broker_state = 'queued' AND available_at <= %s {queue_filter}
    ORDER BY priority DESC, available_at, id
    LIMIT %s
)
RETURNING id, queue_name, message, deliveries, priority, available_at
