-- Put a leased message back: a retry (new body, due later) or a release
-- (never started). The old stream entry goes; a new one (or a delayed
-- member) takes its place, all in one step. Only while the lease is held:
-- a lease that was recovered (its message is queued again already) or that
-- this script ended before (a command sent twice after a dropped connection)
-- puts nothing back, so a message is never queued twice. A message ready now,
-- or delayed but due before every other delayed one, wakes an idle worker.
--
-- KEYS[1] priorities, KEYS[2] delayed, KEYS[3] wake, KEYS[4] stream of the new priority, KEYS[5] leases
-- ARGV[1] receipt "<stream>|<entry id>|<consumer>", ARGV[2] (unused), ARGV[3] task id, ARGV[4] body,
-- ARGV[5] priority, ARGV[6] due (ms), ARGV[7] now (ms), ARGV[8] deliveries so far
-- Returns 1 if the message is ready now, 0 if delayed, -1 if the lease was not held (nothing done).
local priorities, delayed, wake, stream, leases = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
if redis.call('ZREM', leases, ARGV[1]) == 0 then
    return -1
end
local old_stream, old_entry = string.match(ARGV[1], '^(.*)|([^|]+)|[^|]*$')
redis.call('XACK', old_stream, 'djtasks', old_entry)
redis.call('XDEL', old_stream, old_entry)

local id, body, priority, due, now, deliveries = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if due > now then
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')[2]
    redis.call('ZADD', delayed, due, cjson.encode({id, priority, body, deliveries}))
    if not first or due < tonumber(first) then
        redis.call('LPUSH', wake, '1')
        redis.call('LTRIM', wake, 0, 63)
    end
    return 0
end
if redis.call('ZADD', priorities, 'NX', priority, priority) == 1 or redis.call('EXISTS', stream) == 0 then
    redis.pcall('XGROUP', 'CREATE', stream, 'djtasks', '0', 'MKSTREAM')
end
redis.call('XADD', stream, '*', 'id', id, 'body', body, 'd', deliveries)
redis.call('LPUSH', wake, '1')
redis.call('LTRIM', wake, 0, 63)
return 1
