-- concurrency.lua — ratekit concurrency: leases that expire window_ms after
-- they are acquired; at most `limit` units held at once. The same decisions
-- as server/src/limiter/concurrency.c.
--
-- KEYS[1]  state key "<prefix>:{<rule_id>:<key>}:concurrency"
-- ARGV     limit, window_ms, burst (unused), cost (units of the lease; 0
--          peeks), now_ms (-1: Redis TIME), shape (unused), lease id
--          (required when cost > 0), op: "decide" (default, acquires) or
--          "release"
-- Reply    decide: {allowed (0/1), remaining, reset_ms, retry_after_ms, 0}
--          release: {released (0/1)}: 1 if the lease was live
-- State    a sorted set: score = expiry (ms), member "<lease_id>:<units>".
--          A lease is live while now < expiry. Acquiring with the id of a
--          live lease renews it (its units are not counted against the new
--          acquisition). PEXPIRE until the last lease expires. An acquire
--          writes (expired leases removed, the lease added) only when it is
--          allowed with cost > 0; a release removes the lease and deletes
--          the key when no live lease is left.
if redis.replicate_commands then
    redis.replicate_commands()
end

-- Bounds of limiter.h: every intermediate value stays below 2^53.
local LIMIT_MAX, BURST_MAX, WINDOW_MAX = 10000000, 10000000, 604800000
local COST_MAX, NOW_MAX = 1000000000, 140737488355328

local function clamp(v, lo, hi)
    if v < lo then
        return lo
    elseif v > hi then
        return hi
    end
    return v
end

-- An integer argument (floored), or the default when absent or not a number.
local function int(s, default)
    local n = tonumber(s)
    if n == nil or n ~= n then
        return default
    end
    return math.floor(n)
end

-- Integers are formatted with %d: tostring() would write 1.4e+14.
local function fmt(n)
    return string.format('%d', n)
end

local key = KEYS[1]
local now = int(ARGV[5], -1)
if now < 0 then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
now = clamp(now, 0, NOW_MAX)

local LEASE_LIMIT_MAX = 10000
local limit = clamp(int(ARGV[1], 1), 1, LEASE_LIMIT_MAX)
local window = clamp(int(ARGV[2], 1), 1, WINDOW_MAX)
local cost = clamp(int(ARGV[4], 1), 0, COST_MAX)
local lease_id = ARGV[7] or ''
local op = ARGV[8] or 'decide'

local function lease_name(member)
    local name, units = string.match(member, '^(.*):(%d+)$')
    return name, tonumber(units) or 0
end

if op == 'release' then
    local all = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    local was_live = false
    local found = false
    for i = 1, #all, 2 do
        if lease_id ~= '' and lease_name(all[i]) == lease_id then
            was_live = tonumber(all[i + 1]) > now
            redis.call('ZREM', key, all[i])
            found = true
            break
        end
    end
    local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
    if last[2] then
        local expires = tonumber(last[2])
        if expires <= now then
            redis.call('DEL', key)
        elseif found then
            redis.call('PEXPIRE', key, fmt(expires - now))
        end
    end
    return {was_live and 1 or 0}
end

if cost > 0 and lease_id == '' then
    return redis.error_reply('ERR a lease id is required to acquire')
end

local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
if last[2] then
    now = math.max(now, clamp(tonumber(last[2]), 0, NOW_MAX + WINDOW_MAX) - window)
end
-- Live leases, soonest expiry first.
local leases = redis.call('ZRANGEBYSCORE', key, '(' .. fmt(now), '+inf', 'WITHSCORES')
local live, renewed_units, renewed_member = 0, 0, nil
for i = 1, #leases, 2 do
    local name, units = lease_name(leases[i])
    live = live + units
    if lease_id ~= '' and name == lease_id then
        renewed_units, renewed_member = units, leases[i]
    end
end
local others = live - renewed_units

local allowed = cost <= limit and others <= limit - cost
local held = live
local last_expiry = now
if #leases > 0 then
    last_expiry = tonumber(leases[#leases])
end
if allowed and cost > 0 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt(now))
    if renewed_member then
        redis.call('ZREM', key, renewed_member)
    end
    redis.call('ZADD', key, fmt(now + window), lease_id .. ':' .. fmt(cost))
    last_expiry = tonumber(redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')[2])
    redis.call('PEXPIRE', key, fmt(last_expiry - now))
    held = others + cost
end
local reset = 0
if held > 0 then
    reset = last_expiry - now
end
local retry = 0
if not allowed then
    if cost > limit then
        retry = math.max(reset, window)
    else
        -- Wait until enough leases (other than the renewed one) expire.
        local to_free = others + cost - limit
        for i = 1, #leases, 2 do
            if leases[i] ~= renewed_member then
                local _, units = lease_name(leases[i])
                to_free = to_free - units
                if to_free <= 0 then
                    retry = tonumber(leases[i + 1]) - now
                    break
                end
            end
        end
    end
end
return {allowed and 1 or 0, math.max(0, limit - held), reset, retry, 0}
