-- Count one queue's messages: ready, scheduled (not due yet), reserved (leased).
--
-- KEYS[1] priorities, KEYS[2] delayed, KEYS[3] leases
-- ARGV[1] stream key prefix, ARGV[2] now (ms)
-- Returns {ready, scheduled, reserved}.
local priorities, delayed, leases = KEYS[1], KEYS[2], KEYS[3]
local in_streams = 0
for _, priority in ipairs(redis.call('ZRANGE', priorities, 0, -1)) do
    in_streams = in_streams + redis.call('XLEN', ARGV[1] .. priority)
end
local reserved = redis.call('ZCARD', leases)
local due_delayed = redis.call('ZCOUNT', delayed, '-inf', ARGV[2])
local scheduled = redis.call('ZCARD', delayed) - due_delayed
return {in_streams - reserved + due_delayed, scheduled, reserved}
