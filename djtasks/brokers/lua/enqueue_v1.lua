-- Enqueue one message into a queue of the Redis broker.
--
-- KEYS[1] priorities  ZSET of the priorities this queue has streams for
-- KEYS[2] delayed     ZSET of messages not due yet (score: due time, ms)
-- KEYS[3] wake        LIST that idle workers block on (BLPOP)
-- KEYS[4] stream      the STREAM of this message's priority
-- ARGV[1] task id, ARGV[2] body, ARGV[3] priority, ARGV[4] due (ms),
-- ARGV[5] now (ms), ARGV[6] deliveries so far
-- Returns 1 if this created a key of the queue (its first message, or the
-- first after Redis lost its data): the caller then records the queue name.
local priorities, delayed, wake, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, body, priority, due, now, deliveries = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]

if due > now then
    local created = redis.call('EXISTS', delayed) == 0
    redis.call('ZADD', delayed, due, cjson.encode({id, priority, body, deliveries}))
    return created and 1 or 0
end
local created = 0
if redis.call('ZADD', priorities, 'NX', priority, priority) == 1 or redis.call('EXISTS', stream) == 0 then
    redis.pcall('XGROUP', 'CREATE', stream, 'djtasks', '0', 'MKSTREAM')
    created = 1
end
redis.call('XADD', stream, '*', 'id', id, 'body', body, 'd', deliveries)
redis.call('LPUSH', wake, '1')
redis.call('LTRIM', wake, 0, 63)
return created
