-- Take one token from a rate limit's token bucket, if it holds a whole one.
-- The same arithmetic as djtasks.ratelimit.base.take_token, in milliseconds.
--
-- KEYS[1] bucket  HASH {t = tokens (float), u = last update (ms)}; a missing
--                 bucket is full. It moves forward in time only.
-- ARGV[1] now (ms, may carry a fraction), ARGV[2] tokens per second,
-- ARGV[3] burst (the bucket's capacity, tokens),
-- ARGV[4] expiry (ms, whole): a bucket idle that long is full again, so Redis may drop it
-- Returns "0" when a token was taken, else the ms until one will be there, as
-- a string (Redis would truncate a Lua number in a reply to an integer).
local bucket = KEYS[1]
local now, per_ms, burst, expiry = tonumber(ARGV[1]), tonumber(ARGV[2]) / 1000, tonumber(ARGV[3]), ARGV[4]
local epsilon = 1e-9

local tokens, updated = burst, now
local state = redis.call('HMGET', bucket, 't', 'u')
if state[1] and state[2] then
    tokens, updated = tonumber(state[1]), tonumber(state[2])
end
local level = math.min(burst, tokens + math.max(0, now - updated) * per_ms)
if level < 1 - epsilon then
    return string.format('%.17g', (1 - level) / per_ms)
end
redis.call('HSET', bucket, 't', string.format('%.17g', math.max(0, level - 1)),
           'u', string.format('%.17g', math.max(updated, now)))
redis.call('PEXPIRE', bucket, expiry)
return '0'
