-- Remove finished messages of one queue: out of the stream and the leases.
--
-- KEYS[1] leases  ZSET of receipts "<stream>|<entry id>|<consumer>" -> lease deadline (ms)
-- ARGV[1..] receipts
-- Returns how many messages were removed from their stream.
local leases = KEYS[1]
local removed = 0
for i = 1, #ARGV do
    local stream, entry = string.match(ARGV[i], '^(.*)|([^|]+)|[^|]*$')
    redis.call('XACK', stream, 'djtasks', entry)
    removed = removed + redis.call('XDEL', stream, entry)
    redis.call('ZREM', leases, ARGV[i])
end
return removed
