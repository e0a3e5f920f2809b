-- Re-deliver messages whose lease ran out (their worker died): each gets a
-- new stream entry with its delivery count raised, the old one goes.
--
-- KEYS[1] leases, KEYS[2] wake
-- ARGV[1] now (ms), ARGV[2] at most this many
-- Returns how many messages were recovered.
local leases, wake = KEYS[1], KEYS[2]
local recovered = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', leases, '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
    local stream, entry = string.match(member, '^(.*)|([^|]+)|[^|]*$')
    local found = redis.call('XRANGE', stream, entry, entry)
    if found[1] then
        local fields = {}
        for i = 1, #found[1][2], 2 do
            fields[found[1][2][i]] = found[1][2][i + 1]
        end
        redis.call('XADD', stream, '*', 'id', fields['id'], 'body', fields['body'], 'd', tonumber(fields['d']) + 1)
        recovered = recovered + 1
    end
    redis.call('XACK', stream, 'djtasks', entry)
    redis.call('XDEL', stream, entry)
    redis.call('ZREM', leases, member)
end
if recovered > 0 then
    redis.call('LPUSH', wake, '1')
    redis.call('LTRIM', wake, 0, 63)
end
return recovered
