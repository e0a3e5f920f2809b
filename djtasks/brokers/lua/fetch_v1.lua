-- Lease up to LIMIT messages of one queue, highest priority first, then
-- oldest; first move the delayed messages that are due into their streams.
--
-- KEYS[1] priorities  ZSET of priorities (score = priority)
-- KEYS[2] delayed     ZSET of messages not due yet (score: due time, ms)
-- KEYS[3] leases      ZSET of receipts "<stream>|<entry id>|<consumer>" -> lease deadline (ms)
-- ARGV[1] stream key prefix (stream = prefix .. priority)
-- ARGV[2] now (ms), ARGV[3] limit, ARGV[4] consumer (worker id), ARGV[5] lease deadline (ms)
-- Returns a list of {receipt, task id, body, deliveries}; the receipt is the lease member.
local priorities, delayed, leases = KEYS[1], KEYS[2], KEYS[3]
local prefix, now, limit, consumer, deadline = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]

for _, member in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)) do
    local m = cjson.decode(member)
    local stream = prefix .. m[2]
    if redis.call('ZADD', priorities, 'NX', m[2], m[2]) == 1 or redis.call('EXISTS', stream) == 0 then
        redis.pcall('XGROUP', 'CREATE', stream, 'djtasks', '0', 'MKSTREAM')
    end
    redis.call('XADD', stream, '*', 'id', m[1], 'body', m[3], 'd', m[4])
    redis.call('ZREM', delayed, member)
end

local out = {}
if limit <= 0 then
    return out
end
for _, priority in ipairs(redis.call('ZREVRANGE', priorities, 0, -1)) do
    local stream = prefix .. priority
    local reply = redis.pcall('XREADGROUP', 'GROUP', 'djtasks', consumer, 'COUNT', limit - #out,
                              'STREAMS', stream, '>')
    if type(reply) == 'table' and reply[1] then
        for _, entry in ipairs(reply[1][2]) do
            local fields = {}
            for i = 1, #entry[2], 2 do
                fields[entry[2][i]] = entry[2][i + 1]
            end
            local receipt = stream .. '|' .. entry[1] .. '|' .. consumer
            redis.call('ZADD', leases, deadline, receipt)
            out[#out + 1] = {receipt, fields['id'], fields['body'], tonumber(fields['d']) + 1}
        end
    end
    if #out >= limit then
        break
    end
end
return out
