-- Delete the waiting messages of one queue (ready and delayed), not the
-- leased ones.
--
-- KEYS[1] priorities, KEYS[2] delayed, KEYS[3] leases
-- ARGV[1] stream key prefix
-- Returns the task ids of the deleted messages.
local priorities, delayed, leases = KEYS[1], KEYS[2], KEYS[3]
local leased = {}
for _, member in ipairs(redis.call('ZRANGE', leases, 0, -1)) do
    leased[string.match(member, '^(.*)|[^|]*$')] = true
end
local ids = {}
for _, priority in ipairs(redis.call('ZRANGE', priorities, 0, -1)) do
    local stream = ARGV[1] .. priority
    for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
        if not leased[stream .. '|' .. entry[1]] then
            for i = 1, #entry[2], 2 do
                if entry[2][i] == 'id' then
                    ids[#ids + 1] = entry[2][i + 1]
                end
            end
            redis.call('XACK', stream, 'djtasks', entry[1])
            redis.call('XDEL', stream, entry[1])
        end
    end
end
for _, member in ipairs(redis.call('ZRANGE', delayed, 0, -1)) do
    ids[#ids + 1] = cjson.decode(member)[1]
end
redis.call('DEL', delayed)
return ids
