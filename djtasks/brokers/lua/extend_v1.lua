-- Push the lease deadline of messages a worker holds. Only the worker named
-- in a receipt extends it, and XX never revives a lease that was recovered.
--
-- KEYS[1] leases  ZSET of receipts "<stream>|<entry id>|<consumer>" -> lease deadline (ms)
-- ARGV[1] new deadline (ms), ARGV[2] consumer; ARGV[3..] receipts
-- Returns how many leases were extended.
local leases, deadline, consumer = KEYS[1], ARGV[1], ARGV[2]
local extended = 0
for i = 3, #ARGV do
    if string.match(ARGV[i], '|([^|]*)$') == consumer then
        extended = extended + redis.call('ZADD', leases, 'XX', 'CH', deadline, ARGV[i])
    end
end
return extended
