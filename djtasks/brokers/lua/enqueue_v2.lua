-- Enqueue messages into one queue of the Redis broker, in one step.
--
-- KEYS[1] priorities  ZSET of the priorities this queue has streams for
-- KEYS[2] delayed     ZSET of messages not due yet (score: due time, ms)
-- KEYS[3] wake        LIST that idle workers block on (BLPOP)
-- ARGV[1] stream key prefix (stream = prefix .. priority), ARGV[2] now (ms),
-- then five values per message: task id, body, priority, due (ms), deliveries so far
-- Idle workers are woken by a token in the wake list: one per ready message,
-- and one when a delayed message comes due before every other, so that a
-- worker waiting until the first due time waits for this one.
-- Returns 1 if this created a key of the queue (its first message, or the
-- first after Redis lost its data): the caller then records the queue name.
local priorities, delayed, wake = KEYS[1], KEYS[2], KEYS[3]
local prefix, now = ARGV[1], tonumber(ARGV[2])
local created, ready, known = 0, 0, {}
local first_due = nil  -- of the delayed messages before this call; read at its first delayed message
local sooner = false

for i = 3, #ARGV, 5 do
    local id, body, priority, due, deliveries = ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), ARGV[i + 4]
    if due > now then
        if first_due == nil then
            local head = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')[2]
            if head == nil then
                created = 1  -- the delayed set did not exist
            end
            first_due = head and tonumber(head) or math.huge
        end
        redis.call('ZADD', delayed, due, cjson.encode({id, priority, body, deliveries}))
        if due < first_due then
            first_due, sooner = due, true
        end
    else
        local stream = prefix .. priority
        if not known[priority] then
            known[priority] = true
            if redis.call('ZADD', priorities, 'NX', priority, priority) == 1 or redis.call('EXISTS', stream) == 0 then
                redis.pcall('XGROUP', 'CREATE', stream, 'djtasks', '0', 'MKSTREAM')
                created = 1
            end
        end
        redis.call('XADD', stream, '*', 'id', id, 'body', body, 'd', deliveries)
        ready = ready + 1
    end
end
local wakeups = ready + (sooner and 1 or 0)
if wakeups > 0 then
    -- Up to as many as the list keeps.
    local tokens = {}
    for i = 1, math.min(wakeups, 64) do
        tokens[i] = '1'
    end
    if redis.call('LPUSH', wake, unpack(tokens)) > 64 then
        redis.call('LTRIM', wake, 0, 63)
    end
end
return created
