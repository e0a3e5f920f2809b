-- Lease up to LIMIT messages of one queue, highest priority first, then
-- oldest; first move the delayed messages that are due into their streams.
--
-- A fetch whose reply was lost (Redis restarted after running it, or the
-- connection dropped) is sent again with the same TOKEN: it then hands out
-- the messages it leased the first time, instead of leaving them stranded
-- until their lease runs out. So the consumer's last fetch is kept, for the
-- length of a lease.
--
-- A fetch that leaves no message unread empties the wake list: its tokens
-- announced messages that are all taken now, and would only wake idle
-- workers for nothing.
--
-- KEYS[1] priorities  ZSET of priorities (score = priority)
-- KEYS[2] delayed     ZSET of messages not due yet (score: due time, ms)
-- KEYS[3] leases      ZSET of receipts "<stream>|<entry id>|<consumer>" -> lease deadline (ms)
-- KEYS[4] fetched     STRING "<token>\n<receipt>\n<receipt>..." of this consumer's last fetch
-- KEYS[5] wake        LIST that idle workers block on
-- KEYS[6] (optional) budget STRING: messages the fetches of one waiting fetch of several queues
--         have leased so far; this one leases at most LIMIT less that many, and adds its own
-- ARGV[1] stream key prefix (stream = prefix .. priority)
-- ARGV[2] now (ms), ARGV[3] limit, ARGV[4] consumer (worker id), ARGV[5] lease deadline (ms),
-- ARGV[6] token of this fetch (unique, but the same when a fetch is sent again)
-- Returns {next due, deliveries}: when the first delayed message is due (ms; -1 if none), and a
-- list of {receipt, task id, body, deliveries}; the receipt is the lease member.
local priorities, delayed, leases, fetched, wake = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local budget = KEYS[6]
local prefix, now, limit, consumer, deadline, token = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]

local function delivery(stream, entry, receipt)
    local fields = {}
    for i = 1, #entry[2], 2 do
        fields[entry[2][i]] = entry[2][i + 1]
    end
    redis.call('ZADD', leases, deadline, receipt)
    return {receipt, fields['id'], fields['body'], tonumber(fields['d']) + 1}
end

local function next_due()
    local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
    if first[2] then
        return tonumber(first[2])
    end
    return -1
end

local out = {}
local last = redis.call('GET', fetched)
if last and string.sub(last, 1, #token + 1) == token .. '\n' then
    for receipt in string.gmatch(string.sub(last, #token + 2), '[^\n]+') do
        -- Only what is still leased: a lease that ran out went back to the queue.
        if redis.call('ZSCORE', leases, receipt) then
            local stream, id = string.match(receipt, '^(.*)|([^|]+)|[^|]*$')
            local found = redis.call('XRANGE', stream, id, id)
            if found[1] then
                out[#out + 1] = delivery(stream, found[1], receipt)
            end
        end
    end
    return {next_due(), out}
end

-- The first delayed message tells whether any is due; if none is, it is also the next due time.
local due = next_due()
if due >= 0 and due <= tonumber(now) then
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, 1000)) do
        local m = cjson.decode(member)
        local stream = prefix .. m[2]
        if redis.call('ZADD', priorities, 'NX', m[2], m[2]) == 1 or redis.call('EXISTS', stream) == 0 then
            redis.pcall('XGROUP', 'CREATE', stream, 'djtasks', '0', 'MKSTREAM')
        end
        redis.call('XADD', stream, '*', 'id', m[1], 'body', m[3], 'd', m[4])
        redis.call('ZREM', delayed, member)
    end
    due = next_due()
end

if budget then
    limit = limit - tonumber(redis.call('GET', budget) or '0')
end
if limit <= 0 then
    return {due, out}
end
local receipts = {}
for _, priority in ipairs(redis.call('ZREVRANGE', priorities, 0, -1)) do
    local stream = prefix .. priority
    local reply = redis.pcall('XREADGROUP', 'GROUP', 'djtasks', consumer, 'COUNT', limit - #out,
                              'STREAMS', stream, '>')
    if type(reply) == 'table' and reply[1] then
        for _, entry in ipairs(reply[1][2]) do
            local receipt = stream .. '|' .. entry[1] .. '|' .. consumer
            out[#out + 1] = delivery(stream, entry, receipt)
            receipts[#receipts + 1] = receipt
        end
    end
    if #out >= limit then
        break
    end
end
if #out > 0 then
    redis.call('SET', fetched, token .. '\n' .. table.concat(receipts, '\n'), 'PX',
               math.max(1, tonumber(deadline) - tonumber(now)))
    if budget then
        redis.call('INCRBY', budget, #out)
        redis.call('PEXPIRE', budget, 60000)
    end
end
if #out < limit then
    redis.call('DEL', wake)
end
return {due, out}
